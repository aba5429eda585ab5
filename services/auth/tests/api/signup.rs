use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{error_fields, set_cookie_named, spawn_app};

#[tokio::test]
async fn signup_returns_201_with_the_user_and_a_session_cookie() {
    let app = spawn_app().await;

    let response = app.signup("test@test.com", "password").await;

    assert_eq!(response.status(), StatusCode::CREATED);
    let cookie = set_cookie_named(&response, "session").expect("a session cookie");
    assert!(cookie.contains("HttpOnly"));
    assert!(cookie.contains("SameSite=Lax"));
    assert!(
        !cookie.contains("Secure"),
        "not Secure unless served over HTTPS"
    );
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["email"], "test@test.com");
    assert!(
        body["id"]
            .as_str()
            .is_some_and(|id| uuid::Uuid::parse_str(id).is_ok())
    );
    assert!(body.get("password").is_none() && body.get("passwordHash").is_none());
}

#[tokio::test]
async fn signup_stores_the_email_lower_cased_and_the_password_as_an_scrypt_phc_hash() {
    let app = spawn_app().await;

    app.signup("  MiXeD@Example.COM ", "password").await;

    let (email, hash): (String, String) = sqlx::query_as("SELECT email, password_hash FROM users")
        .fetch_one(&app.db.pool)
        .await
        .expect("one user");
    assert_eq!(email, "mixed@example.com");
    assert!(hash.starts_with("$scrypt$ln=17,r=8,p=1$"), "{hash}");
}

#[tokio::test]
async fn signup_rejects_an_invalid_email_and_a_short_password_with_one_entry_each() {
    let app = spawn_app().await;

    let response = app.signup("not-an-email", "short").await;

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.expect("json");
    assert_eq!(error_fields(&body), vec!["email", "password"]);
    assert_eq!(body["errors"][0]["message"], "Email must be valid");
    assert_eq!(
        body["errors"][1]["message"],
        "Password must be between 8 and 128 characters"
    );
}

#[tokio::test]
async fn signup_rejects_missing_fields_with_one_entry_each() {
    let app = spawn_app().await;

    let response = app.post_json("/api/users/signup", &json!({})).await;

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.expect("json");
    assert_eq!(error_fields(&body), vec!["email", "password"]);
}

#[tokio::test]
async fn signup_rejects_passwords_longer_than_128_characters() {
    let app = spawn_app().await;

    let response = app.signup("a@b.co", &"p".repeat(129)).await;

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.expect("json");
    assert_eq!(error_fields(&body), vec!["password"]);
}

#[tokio::test]
async fn signup_rejects_an_email_in_use_whatever_its_case() {
    let app = spawn_app().await;
    assert_eq!(
        app.signup("test@test.com", "password").await.status(),
        StatusCode::CREATED
    );

    let response = app.signup("TEST@test.com", "password2").await;

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["errors"][0]["message"], "Email in use");
    assert_eq!(body["errors"][0]["field"], "email");
}

#[tokio::test]
async fn concurrent_signups_with_one_email_create_exactly_one_user() {
    let app = spawn_app().await;

    let attempts = (0..8).map(|_| app.signup("race@test.com", "password"));
    let statuses: Vec<StatusCode> = futures::future::join_all(attempts)
        .await
        .iter()
        .map(reqwest::Response::status)
        .collect();

    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::BAD_REQUEST)
            .count(),
        7,
        "{statuses:?}"
    );
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&app.db.pool)
        .await
        .expect("count");
    assert_eq!(users, 1);
}

#[tokio::test]
async fn after_signup_the_current_user_is_the_new_user() {
    let app = spawn_app().await;

    app.signup("test@test.com", "password").await;

    let body = app.current_user().await;
    assert_eq!(body["currentUser"]["email"], "test@test.com");
}

#[tokio::test]
async fn signup_publishes_user_created_with_the_stored_email_once() {
    let app = spawn_app().await;

    let response = app.signup("  New@Example.com", "password").await;
    app.signup("new@example.com", "password").await;

    let body: Value = response.json().await.expect("json");
    let events = common::testing::wait_for_published::<common::events::UserCreated>(
        &app.bus,
        &app.db.pool,
        1,
        std::time::Duration::from_secs(10),
    )
    .await;
    assert_eq!(
        events.len(),
        1,
        "the refused second sign-up publishes nothing"
    );
    assert_eq!(events[0].id.to_string(), body["id"].as_str().expect("id"));
    assert_eq!(events[0].email, "new@example.com");
    assert_eq!(events[0].version, 0);
}
