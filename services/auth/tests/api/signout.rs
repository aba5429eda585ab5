use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{cookie_value, set_cookie_named, spawn_app};

#[tokio::test]
async fn signout_clears_the_cookie_and_the_current_user_becomes_null() {
    let app = spawn_app().await;
    app.signup("test@test.com", "password").await;
    assert_eq!(
        app.current_user().await["currentUser"]["email"],
        "test@test.com"
    );

    let response = app
        .client
        .request(reqwest::Method::POST, "/api/users/signout")
        .send()
        .await
        .expect("request");

    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let cookie = set_cookie_named(&response, "session").expect("a clearing cookie");
    assert!(cookie.starts_with("session=;"), "{cookie}");
    assert!(
        cookie.contains("Max-Age=0") || cookie.contains("Expires=Thu, 01 Jan 1970"),
        "{cookie}"
    );
    assert_eq!(
        app.current_user().await,
        serde_json::json!({"currentUser": null})
    );
}

#[tokio::test]
async fn current_user_is_null_without_a_cookie() {
    let app = spawn_app().await;

    let body: Value = app.current_user().await;

    assert_eq!(body, serde_json::json!({"currentUser": null}));
}

#[tokio::test]
async fn a_forged_session_cookie_is_anonymous() {
    let app = spawn_app().await;
    let response = app.signup("test@test.com", "password").await;
    let token = cookie_value(&response, "session").expect("token");
    let mut parts: Vec<&str> = token.split('.').collect();
    parts[2] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let forged = parts.join(".");

    let body: Value = reqwest::Client::new()
        .get(app.url("/api/users/currentuser"))
        .header("Cookie", format!("session={forged}"))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");

    assert_eq!(body, serde_json::json!({"currentUser": null}));
}
