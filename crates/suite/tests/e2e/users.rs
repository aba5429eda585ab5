use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Suite, browser};

#[tokio::test]
async fn a_new_user_signs_up_is_current_signs_out_and_is_anonymous_again() {
    let suite = Suite::start(&[]).await;
    let client = browser();

    let signup = client
        .post(suite.url("/api/users/signup"))
        .json(&json!({"email": "new@example.com", "password": "password1"}))
        .send()
        .await
        .expect("signup");
    assert_eq!(signup.status(), StatusCode::CREATED);
    let me: Value = client
        .get(suite.url("/api/users/currentuser"))
        .send()
        .await
        .expect("currentuser")
        .json()
        .await
        .expect("json");
    assert_eq!(me["currentUser"]["email"], "new@example.com");

    let signout = client
        .post(suite.url("/api/users/signout"))
        .send()
        .await
        .expect("signout");
    assert_eq!(signout.status(), StatusCode::NO_CONTENT);
    let me: Value = client
        .get(suite.url("/api/users/currentuser"))
        .send()
        .await
        .expect("currentuser")
        .json()
        .await
        .expect("json");
    assert_eq!(me, json!({"currentUser": null}));
}

#[tokio::test]
async fn bad_input_and_unknown_routes_get_the_error_body() {
    let suite = Suite::start(&[]).await;
    let client = browser();

    let bad = client
        .post(suite.url("/api/users/signup"))
        .json(&json!({"email": "x", "password": "1"}))
        .send()
        .await
        .expect("signup");
    let unknown = client
        .get(suite.url("/api/nothing-here"))
        .send()
        .await
        .expect("get");

    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let body: Value = bad.json().await.expect("json");
    assert_eq!(body["errors"].as_array().map(Vec::len), Some(2));
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        unknown.json::<Value>().await.expect("json"),
        json!({"errors": [{"message": "Not found"}]})
    );
}

#[tokio::test]
async fn sigterm_shuts_the_suite_down_cleanly_within_the_bound() {
    let mut suite = Suite::start(&[("SHUTDOWN_TIMEOUT_SECONDS", "5")]).await;

    let status = suite.terminate(Duration::from_secs(10));

    assert!(
        status.is_some_and(|s| s.success()),
        "exited 0 within the bound: {status:?}"
    );
}

#[tokio::test]
async fn a_missing_setting_stops_the_suite_with_a_message_naming_it() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_buytickets-suite"))
        .env_remove("JWT_KEY")
        .env("AUTH_DATABASE_URL", "postgres://postgres@127.0.0.1/none")
        .output()
        .expect("runs");

    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("JWT_KEY is not set"), "{stderr}");
}
