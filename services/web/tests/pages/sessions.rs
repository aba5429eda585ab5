//! Sessions seen from the pages: an expired access token is renewed from
//! the refresh cookie without the visitor noticing, a signed-out visitor is
//! sent to sign in, a banned one to a page that says so.

use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION};
use serde_json::{Value, json};

use common::testing::{cookie_value, tokens};

use crate::helpers::{ADMIN, no_redirects, spawn_site};

/// Signs `email` up through the API: its id, access and refresh tokens.
async fn sign_up(base: &str, email: &str) -> (uuid::Uuid, String, String) {
    let response = reqwest::Client::new()
        .post(format!("{base}/api/users/signup"))
        .json(&json!({"email": email, "password": "password1"}))
        .send()
        .await
        .expect("signup");
    assert_eq!(response.status(), StatusCode::CREATED);
    let access = cookie_value(&response, "session").expect("access");
    let refresh = cookie_value(&response, "refresh").expect("refresh");
    let body: Value = response.json().await.expect("json");
    let id = body["id"]
        .as_str()
        .and_then(|i| i.parse().ok())
        .expect("id");
    (id, access, refresh)
}

async fn get(url: String, cookie: &str) -> reqwest::Response {
    no_redirects()
        .get(url)
        .header(COOKIE, cookie)
        .send()
        .await
        .expect("GET")
}

fn location(response: &reqwest::Response) -> String {
    response.headers()[LOCATION]
        .to_str()
        .expect("a location")
        .to_string()
}

#[tokio::test]
async fn an_expired_access_token_is_renewed_from_the_refresh_cookie_and_the_page_shown() {
    let site = spawn_site().await;
    let (id, _, refresh) = sign_up(&site.base, "ada@example.com").await;
    let mut claims = tokens::valid_claims(&common::session::CurrentUser {
        id,
        email: "ada@example.com".into(),
    });
    let now = chrono::Utc::now().timestamp();
    claims["iat"] = json!(now - 1000);
    claims["nbf"] = json!(now - 1000);
    claims["exp"] = json!(now - 100);
    let expired = tokens::sign_valid(&claims);

    let page = get(site.url("/orders"), &format!("session={expired}")).await;
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&page), "/api/users/refresh?next=%2Forders");
    let renewed = get(site.url(&location(&page)), &format!("refresh={refresh}")).await;
    assert_eq!(renewed.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&renewed), "/orders");
    let access = cookie_value(&renewed, "session").expect("a new access token");
    let again = get(site.url("/orders"), &format!("session={access}")).await;

    assert_eq!(again.status(), StatusCode::OK);
    assert!(
        again
            .text()
            .await
            .expect("html")
            .contains("ada@example.com")
    );
}

#[tokio::test]
async fn without_a_refresh_cookie_the_visitor_is_sent_to_sign_in_and_back() {
    let site = spawn_site().await;

    let renew = get(site.url("/api/users/refresh?next=%2Forders"), "").await;

    assert_eq!(renew.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&renew), "/auth/signin?next=%2Forders");
}

#[tokio::test]
async fn the_refresh_route_never_sends_the_browser_to_another_site() {
    let site = spawn_site().await;

    let renew = get(
        site.url("/api/users/refresh?next=https%3A%2F%2Fevil.example"),
        "",
    )
    .await;

    assert_eq!(location(&renew), "/auth/signin?next=%2F");
}

#[tokio::test]
async fn a_banned_user_is_sent_to_a_page_that_says_so_and_signed_out() {
    let site = spawn_site().await;
    let (_, admin, _) = sign_up(&site.base, ADMIN).await;
    let (id, access, _) = sign_up(&site.base, "mallory@example.com").await;
    let ban = reqwest::Client::new()
        .post(site.url(&format!("/api/users/{id}/ban")))
        .header(COOKIE, format!("session={admin}"))
        .json(&json!({"reason": "stolen cards"}))
        .send()
        .await
        .expect("ban");
    assert_eq!(ban.status(), StatusCode::OK);

    let page = get(site.url("/orders"), &format!("session={access}")).await;
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&page), "/auth/banned");
    let banned = get(site.url("/auth/banned"), &format!("session={access}")).await;

    assert_eq!(banned.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        cookie_value(&banned, "session").as_deref(),
        Some(""),
        "signed out on the way"
    );
    let html = banned.text().await.expect("html");
    assert!(html.contains("This account is banned"), "{html}");
}

/// A browser signed up (and so signed in) through the site's form as `email`.
async fn browser_of(site: &crate::helpers::Site, email: &str) -> crate::helpers::Browser {
    let browser = site.browser();
    let page = browser
        .post(
            "/auth/signup",
            &[("email", email), ("password", "password1"), ("next", "/")],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    browser
}

#[tokio::test]
async fn an_admin_bans_and_unbans_a_user_from_the_admin_page() {
    let site = spawn_site().await;
    let admin = browser_of(&site, ADMIN).await;
    let (id, access, _) = sign_up(&site.base, "eve@example.com").await;
    let user_id = id.to_string();

    admin.get("/admin/users").await.shows("Ban or unban a user");
    let missing = admin
        .post(
            "/admin/users",
            &[("user_id", &user_id), ("reason", ""), ("action", "ban")],
        )
        .await;
    let banned = admin
        .post(
            "/admin/users",
            &[
                ("user_id", &user_id),
                ("reason", "chargebacks"),
                ("action", "ban"),
            ],
        )
        .await;
    let refused = get(site.url("/api/orders"), &format!("session={access}")).await;
    let unbanned = admin
        .post(
            "/admin/users",
            &[("user_id", &user_id), ("reason", ""), ("action", "unban")],
        )
        .await;

    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    missing.shows("A reason is required");
    assert_eq!(banned.status, StatusCode::OK, "{}", banned.html);
    banned.shows("eve@example.com is banned.");
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(unbanned.status, StatusCode::OK, "{}", unbanned.html);
    unbanned.shows("eve@example.com is no longer banned.");
}

#[tokio::test]
async fn the_admin_page_refuses_users_who_are_not_admins_and_bad_ids() {
    let site = spawn_site().await;
    let someone = browser_of(&site, "someone@example.com").await;
    let (id, _, _) = sign_up(&site.base, "target@example.com").await;
    let user_id = id.to_string();

    let refused = someone
        .post(
            "/admin/users",
            &[("user_id", &user_id), ("reason", "no"), ("action", "ban")],
        )
        .await;
    let bad_id = someone
        .post(
            "/admin/users",
            &[("user_id", "42"), ("reason", "no"), ("action", "ban")],
        )
        .await;
    let anonymous = site.browser().get("/admin/users").await;

    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    refused.shows("Only administrators can ban and unban users.");
    assert_eq!(bad_id.status, StatusCode::BAD_REQUEST);
    bad_id.shows("id (a UUID)");
    assert!(
        anonymous.path.starts_with("/auth/signin"),
        "{}",
        anonymous.path
    );
}
