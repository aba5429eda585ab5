use std::time::Instant;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{error_fields, new_client, set_cookie, set_cookie_named, spawn_app};

#[tokio::test]
async fn signin_with_the_right_password_returns_the_user_and_a_cookie() {
    let app = spawn_app().await;
    new_client()
        .post(app.url("/api/users/signup"))
        .json(&serde_json::json!({"email": "test@test.com", "password": "password"}))
        .send()
        .await
        .expect("signup");
    assert_eq!(
        app.current_user().await["currentUser"],
        Value::Null,
        "this client has no session yet"
    );

    let response = app.signin("Test@Test.com", "password").await;

    assert_eq!(response.status(), StatusCode::OK);
    assert!(set_cookie_named(&response, "session").is_some());
    assert!(set_cookie_named(&response, "refresh").is_some());
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["email"], "test@test.com");
    assert_eq!(
        app.current_user().await["currentUser"]["email"],
        "test@test.com"
    );
}

#[tokio::test]
async fn signin_with_a_wrong_password_is_invalid_credentials_without_a_cookie() {
    let app = spawn_app().await;
    app.signup("test@test.com", "password").await;

    let response = app.signin("test@test.com", "wrong-password").await;

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(set_cookie(&response).is_none());
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["errors"][0]["message"], "Invalid credentials");
}

#[tokio::test]
async fn signin_with_an_unknown_email_gets_the_same_answer_as_a_wrong_password() {
    let app = spawn_app().await;
    app.signup("test@test.com", "password").await;

    let unknown = app.signin("nobody@test.com", "password").await;
    let wrong = app.signin("test@test.com", "wrong-password").await;

    assert_eq!(unknown.status(), wrong.status());
    let (unknown, wrong): (Value, Value) = (
        unknown.json().await.expect("json"),
        wrong.json().await.expect("json"),
    );
    assert_eq!(unknown, wrong);
}

#[tokio::test]
async fn signin_takes_about_as_long_for_an_unknown_email_as_for_a_wrong_password() {
    let app = spawn_app().await;
    app.signup("test@test.com", "password").await;
    // Warm up the decoy hash, computed once per process.
    app.signin("warmup@test.com", "password").await;

    let timed = |email: &'static str| {
        let app = &app;
        async move {
            let mut total = std::time::Duration::ZERO;
            for _ in 0..3 {
                let start = Instant::now();
                app.signin(email, "wrong-password").await;
                total += start.elapsed();
            }
            total
        }
    };
    let unknown = timed("nobody@test.com").await;
    let known = timed("test@test.com").await;

    // Both pay one scrypt verification; a missing hash would make the unknown
    // email answer in a small fraction of the time.
    let ratio = unknown.as_secs_f64() / known.as_secs_f64();
    assert!(
        (0.5..2.0).contains(&ratio),
        "unknown {unknown:?} vs known {known:?}"
    );
}

#[tokio::test]
async fn signin_requires_a_valid_email_and_a_password() {
    let app = spawn_app().await;

    let response = app.signin("nope", "").await;

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.expect("json");
    assert_eq!(error_fields(&body), vec!["email", "password"]);
}
