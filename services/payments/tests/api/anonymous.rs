//! Paying needs a signed-in user.

use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{User, charge_succeeds, mount_charge, spawn_app};

#[tokio::test]
async fn an_anonymous_payment_is_refused_with_401_and_charges_nothing() {
    let app = spawn_app().await;
    let order = app.seed_order(User::new().id, 2000).await;
    mount_charge(&app.stripe, charge_succeeds("pi_never", 2000), 0).await;

    let response = app
        .post_payment_body(None, &json!({"token": "tok_visa", "orderId": order}))
        .await;

    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body, json!({"errors": [{"message": "Not signed in"}]}));
    assert_eq!(app.count("SELECT count(*) FROM payments").await, 0);
}

#[tokio::test]
async fn a_forged_session_cookie_is_anonymous() {
    let app = spawn_app().await;

    let response = app
        .client
        .request(reqwest::Method::POST, "/api/payments")
        .header("Cookie", format!("session=x.{}.y", Uuid::now_v7()))
        .json(&json!({"token": "tok_visa", "orderId": Uuid::now_v7()}))
        .send()
        .await
        .expect("request");

    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}
