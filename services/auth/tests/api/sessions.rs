//! Access tokens, refresh rotation, reuse detection, sign-out and the deny
//! cache, against the real service, PostgreSQL and Redis.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2_legacy::{Digest as _, Sha256};

use common::session::CurrentUser;
use common::testing::tokens::forged_tokens;

use crate::helpers::{TestApp, cookie_value, set_cookie_named, spawn_app, spawn_app_with};

/// A browser's two cookies.
pub(crate) struct Cookies {
    pub(crate) access: String,
    pub(crate) refresh: String,
}

/// Signs `email` up and returns its cookies.
pub(crate) async fn signed_up(app: &TestApp, email: &str) -> Cookies {
    let response = app.signup(email, "password").await;
    assert_eq!(response.status(), StatusCode::CREATED);
    cookies_of(&response)
}

fn cookies_of(response: &reqwest::Response) -> Cookies {
    Cookies {
        access: cookie_value(response, "session").expect("an access cookie"),
        refresh: cookie_value(response, "refresh").expect("a refresh cookie"),
    }
}

async fn current_user_with(app: &TestApp, access: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(app.url("/api/users/currentuser"))
        .header("Cookie", format!("session={access}"))
        .send()
        .await
        .expect("request")
}

async fn refresh_with(app: &TestApp, refresh: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(app.url("/api/users/refresh"))
        .header("Cookie", format!("refresh={refresh}"))
        .send()
        .await
        .expect("request")
}

async fn post_with(app: &TestApp, path: &str, access: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(app.url(path))
        .header("Cookie", format!("session={access}"))
        .send()
        .await
        .expect("request")
}

async fn signed_in_user(app: &TestApp, access: &str) -> Value {
    let response = current_user_with(app, access).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    body["currentUser"].clone()
}

#[tokio::test]
async fn every_wrong_token_is_anonymous_and_none_is_a_server_error() {
    let app = spawn_app().await;
    let user = CurrentUser {
        id: uuid::Uuid::now_v7(),
        email: "a@test.com".into(),
    };

    for (name, token) in forged_tokens(&user) {
        let current = current_user_with(&app, &token).await;
        assert_eq!(current.status(), StatusCode::OK, "{name}");
        let body: Value = current.json().await.expect("json");
        assert_eq!(body, json!({"currentUser": null}), "{name}");
        let protected = post_with(&app, "/api/users/signout-everywhere", &token).await;
        assert_eq!(protected.status(), StatusCode::UNAUTHORIZED, "{name}");
    }
}

#[tokio::test]
async fn the_cookies_are_http_only_lax_and_the_refresh_cookie_is_scoped_to_its_path() {
    let app = spawn_app().await;

    let response = app.signup("a@test.com", "password").await;

    let access = set_cookie_named(&response, "session").expect("access cookie");
    let refresh = set_cookie_named(&response, "refresh").expect("refresh cookie");
    for cookie in [&access, &refresh] {
        assert!(cookie.contains("HttpOnly"), "{cookie}");
        assert!(cookie.contains("SameSite=Lax"), "{cookie}");
        assert!(!cookie.contains("Secure"), "{cookie}");
    }
    assert!(
        access.contains("Path=/;") || access.ends_with("Path=/"),
        "{access}"
    );
    assert!(refresh.contains("Path=/api/users/refresh"), "{refresh}");
}

#[tokio::test]
async fn over_https_the_cookies_are_secure_with_host_and_secure_prefixes() {
    let app = spawn_app_with(|s| s.common.session.secure_cookie = true).await;

    let response = app.signup("a@test.com", "password").await;

    let access = set_cookie_named(&response, "__Host-session").expect("access cookie");
    let refresh = set_cookie_named(&response, "__Secure-refresh").expect("refresh cookie");
    assert!(
        access.contains("Secure") && access.contains("Path=/"),
        "{access}"
    );
    assert!(!access.contains("Domain"), "{access}");
    assert!(
        refresh.contains("Secure") && refresh.contains("Path=/api/users/refresh"),
        "{refresh}"
    );
}

#[tokio::test]
async fn the_access_token_carries_a_short_expiry_and_every_checked_claim() {
    let app = spawn_app_with(|s| s.common.session.ttl = Duration::from_secs(900)).await;
    let cookies = signed_up(&app, "a@test.com").await;

    let payload = cookies.access.split('.').nth(1).expect("a JWT");
    let claims: Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
            .expect("base64"),
    )
    .expect("json");
    let header = cookies.access.split('.').next().expect("header");
    let header: Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, header)
            .expect("base64"),
    )
    .expect("json");

    assert_eq!(header["alg"], "HS256");
    assert_eq!(
        claims["exp"].as_i64().expect("exp") - claims["iat"].as_i64().expect("iat"),
        900
    );
    assert_eq!(claims["nbf"], claims["iat"]);
    for claim in ["iss", "aud", "jti", "sid", "sub"] {
        assert!(claims[claim].is_string(), "{claim} in {claims}");
    }
}

#[tokio::test]
async fn a_refresh_token_is_stored_only_as_its_hash() {
    let app = spawn_app().await;
    let cookies = signed_up(&app, "a@test.com").await;

    let stored: Vec<Vec<u8>> = sqlx::query_scalar("SELECT token_hash FROM refresh_tokens")
        .fetch_all(&app.db.pool)
        .await
        .expect("tokens");

    assert_eq!(
        stored,
        vec![Sha256::digest(cookies.refresh.as_bytes()).to_vec()]
    );
}

#[tokio::test]
async fn refresh_rotates_both_tokens_and_the_new_access_token_works() {
    let app = spawn_app().await;
    let first = signed_up(&app, "a@test.com").await;

    let response = refresh_with(&app, &first.refresh).await;

    assert_eq!(response.status(), StatusCode::OK);
    let second = cookies_of(&response);
    assert_ne!(second.refresh, first.refresh);
    assert_ne!(second.access, first.access);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["email"], "a@test.com");
    assert_eq!(
        signed_in_user(&app, &second.access).await["email"],
        "a@test.com"
    );
    let third = refresh_with(&app, &second.refresh).await;
    assert_eq!(
        third.status(),
        StatusCode::OK,
        "the rotated token rotates again"
    );
}

#[tokio::test]
async fn reusing_a_rotated_refresh_token_revokes_the_whole_session() {
    let app = spawn_app().await;
    let first = signed_up(&app, "a@test.com").await;
    let rotated = refresh_with(&app, &first.refresh).await;
    let second = cookies_of(&rotated);

    let reuse = refresh_with(&app, &first.refresh).await;

    assert_eq!(reuse.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        cookie_value(&reuse, "refresh").as_deref(),
        Some(""),
        "the cookies are cleared"
    );
    assert_eq!(
        refresh_with(&app, &second.refresh).await.status(),
        StatusCode::UNAUTHORIZED,
        "the legitimate holder's newer token is revoked too"
    );
    assert_eq!(
        signed_in_user(&app, &second.access).await,
        Value::Null,
        "the session's access tokens no longer count"
    );
    let reason: String = sqlx::query_scalar("SELECT revoked_reason FROM sessions")
        .fetch_one(&app.db.pool)
        .await
        .expect("the session");
    assert_eq!(reason, "reuse");
}

#[tokio::test]
async fn concurrent_uses_of_one_refresh_token_rotate_it_once() {
    let app = spawn_app().await;
    let cookies = signed_up(&app, "a@test.com").await;

    let attempts = (0..6).map(|_| refresh_with(&app, &cookies.refresh));
    let statuses: Vec<StatusCode> = futures::future::join_all(attempts)
        .await
        .iter()
        .map(reqwest::Response::status)
        .collect();

    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::OK || *s == StatusCode::UNAUTHORIZED),
        "{statuses:?}"
    );
}

#[tokio::test]
async fn an_unknown_or_missing_refresh_token_is_401_in_the_error_format() {
    let app = spawn_app().await;

    let unknown = refresh_with(&app, "not-a-token").await;
    let missing = reqwest::Client::new()
        .post(app.url("/api/users/refresh"))
        .send()
        .await
        .expect("request");

    for response in [unknown, missing] {
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let body: Value = response.json().await.expect("json");
        assert_eq!(body, json!({"errors": [{"message": "Not signed in"}]}));
    }
}

#[tokio::test]
async fn an_expired_refresh_token_is_401() {
    let app = spawn_app().await;
    let cookies = signed_up(&app, "a@test.com").await;
    sqlx::query("UPDATE refresh_tokens SET expires_at = now() - interval '1 second'")
        .execute(&app.db.pool)
        .await
        .expect("expire");

    assert_eq!(
        refresh_with(&app, &cookies.refresh).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn after_signout_the_old_access_cookie_and_refresh_token_no_longer_work() {
    let app = spawn_app().await;
    let cookies = signed_up(&app, "a@test.com").await;
    assert_eq!(
        signed_in_user(&app, &cookies.access).await["email"],
        "a@test.com"
    );

    let signout = post_with(&app, "/api/users/signout", &cookies.access).await;

    assert_eq!(signout.status(), StatusCode::NO_CONTENT);
    assert_eq!(signed_in_user(&app, &cookies.access).await, Value::Null);
    assert_eq!(
        post_with(&app, "/api/users/signout-everywhere", &cookies.access)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        refresh_with(&app, &cookies.refresh).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let denied: i64 = sqlx::query_scalar("SELECT count(*) FROM revoked_access_tokens")
        .fetch_one(&app.db.pool)
        .await
        .expect("count");
    assert_eq!(denied, 1);
}

#[tokio::test]
async fn signout_everywhere_ends_every_session_of_the_user_only() {
    let app = spawn_app().await;
    let laptop = signed_up(&app, "a@test.com").await;
    let phone = cookies_of(&app.signin("a@test.com", "password").await);
    let other = signed_up(&app, "b@test.com").await;

    let response = post_with(&app, "/api/users/signout-everywhere", &laptop.access).await;

    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    for cookies in [&laptop, &phone] {
        assert_eq!(signed_in_user(&app, &cookies.access).await, Value::Null);
        assert_eq!(
            refresh_with(&app, &cookies.refresh).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        signed_in_user(&app, &other.access).await["email"],
        "b@test.com"
    );
}

#[tokio::test]
async fn signout_everywhere_needs_a_signed_in_user() {
    let app = spawn_app().await;

    let response = reqwest::Client::new()
        .post(app.url("/api/users/signout-everywhere"))
        .send()
        .await
        .expect("request");

    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn with_redis_unreachable_sessions_fail_open_and_no_request_fails() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let app = spawn_app_with(|s| {
        s.common.session.redis_url = Some(format!("redis://127.0.0.1:{closed}"));
    })
    .await;

    let started = std::time::Instant::now();
    let cookies = signed_up(&app, "a@test.com").await;
    let user = signed_in_user(&app, &cookies.access).await;
    let signout = post_with(&app, "/api/users/signout", &cookies.access).await;

    assert_eq!(user["email"], "a@test.com", "the deny check fails open");
    assert_eq!(signout.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        refresh_with(&app, &cookies.refresh).await.status(),
        StatusCode::UNAUTHORIZED,
        "the database still ended the session"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}
