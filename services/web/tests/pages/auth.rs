//! Sign up, sign in, sign out through the forms; the session cookie set by
//! the auth API reaches the browser.

use reqwest::StatusCode;
use reqwest::header::{LOCATION, SET_COOKIE};

use crate::helpers::{no_redirects, spawn_site};

#[tokio::test]
async fn sign_up_errors_are_shown_next_to_their_fields_and_the_email_is_kept() {
    let site = spawn_site().await;

    let page = site
        .browser()
        .post(
            "/auth/signup",
            &[("email", "not-an-email\"><b>"), ("password", "short")],
        )
        .await;

    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert_eq!(page.path, "/auth/signup");
    page.shows("<p class=\"field-error\" id=\"email-error\">Email must be valid</p>")
        .shows(
            "<p class=\"field-error\" id=\"password-error\">Password must be between 8 and 128 characters</p>",
        )
        .shows("aria-invalid=\"true\" aria-describedby=\"email-error\"")
        .shows("value=\"not-an-email&#34;&#62;&#60;b&#62;\"")
        .lacks("value=\"short\"");
}

#[tokio::test]
async fn signing_up_sets_the_session_cookie_and_the_header_shows_the_email() {
    let site = spawn_site().await;

    let response = no_redirects()
        .post(site.url("/auth/signup"))
        .form(&[("email", "ada@example.com"), ("password", "correct horse")])
        .send()
        .await
        .expect("POST");

    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[LOCATION], "/");
    let cookie = response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("session="))
        .expect("the session cookie is passed on")
        .to_string();
    assert!(cookie.contains("HttpOnly"), "{cookie}");

    // The same, as a browser: it follows the redirect with the cookie.
    let browser = site.browser();
    let page = browser
        .post(
            "/auth/signup",
            &[
                ("email", "grace@example.com"),
                ("password", "correct horse"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.path, "/");
    page.shows("Signed in as <strong>grace@example.com</strong>")
        .shows("Sell a ticket");
}

#[tokio::test]
async fn a_taken_email_is_refused_next_to_the_email() {
    let site = spawn_site().await;
    let form = [("email", "ada@example.com"), ("password", "correct horse")];
    site.browser().post("/auth/signup", &form).await;

    let page = site.browser().post("/auth/signup", &form).await;

    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    page.shows("id=\"email-error\">Email in use</p>")
        .shows("value=\"ada@example.com\"");
}

#[tokio::test]
async fn signing_out_and_in_again_changes_who_the_header_shows() {
    let site = spawn_site().await;
    let browser = site.browser();
    let credentials = [("email", "ada@example.com"), ("password", "correct horse")];
    browser.post("/auth/signup", &credentials).await;

    let out = browser.post("/auth/signout", &[]).await;
    assert_eq!(out.path, "/");
    out.lacks("ada@example.com").shows("href=\"/auth/signin\"");

    let wrong = browser
        .post(
            "/auth/signin",
            &[("email", "ada@example.com"), ("password", "wrong password")],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    wrong
        .shows("<div class=\"alert\" role=\"alert\">")
        .shows("Invalid credentials")
        .shows("value=\"ada@example.com\"");

    let back = browser
        .post(
            "/auth/signin",
            &[credentials[0], credentials[1], ("next", "/orders")],
        )
        .await;
    assert_eq!(back.status, StatusCode::OK);
    assert_eq!(back.path, "/orders", "back where the visitor was going");
    back.shows("Signed in as <strong>ada@example.com</strong>");
}

#[tokio::test]
async fn signing_in_never_sends_the_visitor_to_another_site() {
    let site = spawn_site().await;
    site.browser()
        .post(
            "/auth/signup",
            &[("email", "ada@example.com"), ("password", "correct horse")],
        )
        .await;

    let response = no_redirects()
        .post(site.url("/auth/signin"))
        .form(&[
            ("email", "ada@example.com"),
            ("password", "correct horse"),
            ("next", "//evil.example/"),
        ])
        .send()
        .await
        .expect("POST");

    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[LOCATION], "/");
}
