use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::spawn_app;

async fn error_body(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    (
        status,
        response.json().await.expect("an error body in JSON"),
    )
}

#[tokio::test]
async fn malformed_json_gets_the_error_body() {
    let app = spawn_app().await;

    let response = app
        .client
        .request(reqwest::Method::POST, "/api/users/signup")
        .header("Content-Type", "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .expect("request");

    let (status, body) = error_body(response).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Malformed JSON body"))
    );
}

#[tokio::test]
async fn a_body_without_json_content_type_gets_415_in_the_error_format() {
    let app = spawn_app().await;

    let response = app
        .client
        .request(reqwest::Method::POST, "/api/users/signup")
        .body("email=a@b.co&password=password")
        .send()
        .await
        .expect("request");

    let (status, body) = error_body(response).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(body["errors"][0]["message"].is_string());
}

#[tokio::test]
async fn a_mistyped_field_is_reported_against_that_field() {
    let app = spawn_app().await;

    let response = app
        .post_json(
            "/api/users/signup",
            &json!({"email": 42, "password": "password"}),
        )
        .await;

    let (status, body) = error_body(response).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["errors"][0]["field"], "email");
}

#[tokio::test]
async fn an_oversized_body_gets_413_in_the_error_format() {
    let app = spawn_app().await;
    let huge = "x".repeat(common::http::BODY_LIMIT + 1);

    let response = app
        .post_json(
            "/api/users/signup",
            &json!({"email": "a@b.co", "password": huge}),
        )
        .await;

    let (status, body) = error_body(response).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        body,
        json!({"errors": [{"message": "Request body is too large"}]})
    );
}

#[tokio::test]
async fn an_unknown_route_gets_404_in_the_error_format() {
    let app = spawn_app().await;

    let response = app
        .client
        .request(reqwest::Method::GET, "/api/users/nope")
        .send()
        .await
        .expect("request");

    let (status, body) = error_body(response).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body, json!({"errors": [{"message": "Not found"}]}));
}

#[tokio::test]
async fn a_wrong_method_gets_405_in_the_error_format() {
    let app = spawn_app().await;

    let response = app
        .client
        .request(reqwest::Method::GET, "/api/users/signup")
        .send()
        .await
        .expect("request");

    let (status, body) = error_body(response).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body, json!({"errors": [{"message": "Method not allowed"}]}));
}
