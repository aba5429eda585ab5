//! Declined and refused cards: the buyer reads why, nothing is recorded as
//! paid, and the order stays payable with another card.

use common::events::PaymentCreated;
use reqwest::StatusCode;
use serde_json::{Value, json};
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::{User, card_declined, charge_succeeds, first_message, intent_id, spawn_app};

#[tokio::test]
async fn a_declined_card_is_a_402_with_stripes_message_and_another_card_then_pays() {
    let app = spawn_app().await;
    let buyer = User::new();
    let order = app.seed_order(buyer.id, 2000).await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .and(body_string_contains("tok_chargeDeclined"))
        .respond_with(card_declined("Your card was declined."))
        .expect(1)
        .mount(&app.stripe)
        .await;
    let pi = intent_id();
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .and(body_string_contains("tok_visa"))
        .respond_with(charge_succeeds(&pi, 2000))
        .expect(1)
        .mount(&app.stripe)
        .await;

    let declined = app.pay(&buyer, order, "tok_chargeDeclined").await;

    assert_eq!(declined.status(), StatusCode::PAYMENT_REQUIRED);
    let body: Value = declined.json().await.expect("json");
    assert_eq!(
        body,
        json!({"errors": [{"message": "Your card was declined."}]})
    );
    assert_eq!(app.payments_of(order).await, vec![("failed".into(), None)]);
    assert_eq!(
        app.count("SELECT count(*) FROM outbox").await,
        0,
        "a decline publishes nothing"
    );

    let second = app.pay(&buyer, order, "tok_visa").await;

    assert_eq!(second.status(), StatusCode::CREATED);
    assert_eq!(
        app.payments_of(order).await,
        vec![("failed".into(), None), ("succeeded".into(), Some(pi))]
    );
    let keys: Vec<Option<String>> = app
        .stripe_calls("/v1/payment_intents")
        .await
        .into_iter()
        .map(|c| c.idempotency_key)
        .collect();
    assert_eq!(
        keys,
        vec![
            Some(format!("order-{order}")),
            Some(format!("order-{order}-2"))
        ],
        "the second card is a new request to Stripe, not a replay of the declined one"
    );
    assert_eq!(app.wait_for_published::<PaymentCreated>(1).await.len(), 1);
}

#[tokio::test]
async fn a_token_stripe_refuses_is_a_400_with_its_message_and_the_order_stays_payable() {
    let app = spawn_app().await;
    let buyer = User::new();
    let order = app.seed_order(buyer.id, 2000).await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {
            "type": "invalid_request_error",
            "code": "resource_missing",
            "param": "payment_method_data[card][token]",
            "message": "No such token: 'tok_unknown'",
        }})))
        .expect(1)
        .mount(&app.stripe)
        .await;

    let response = app.pay(&buyer, order, "tok_unknown").await;

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.expect("json");
    assert_eq!(first_message(&body), "No such token: 'tok_unknown'");
    assert_eq!(app.payments_of(order).await, vec![("failed".into(), None)]);
}

#[tokio::test]
async fn a_stripe_outage_is_a_500_that_leaves_the_attempt_pending_and_publishes_nothing() {
    let app = spawn_app().await;
    let buyer = User::new();
    let order = app.seed_order(buyer.id, 2000).await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .respond_with(ResponseTemplate::new(500).set_body_json(json!({"error": {
            "type": "api_error",
            "message": "An unknown error occurred",
        }})))
        .expect(1)
        .mount(&app.stripe)
        .await;

    let response = app.pay(&buyer, order, "tok_visa").await;

    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body: Value = response.json().await.expect("json");
    assert_eq!(first_message(&body), "Something went wrong");
    // Whether Stripe charged is unknown: the attempt stays pending until its
    // webhook (or a later attempt) settles it.
    assert_eq!(app.payments_of(order).await, vec![("pending".into(), None)]);
    assert_eq!(app.count("SELECT count(*) FROM outbox").await, 0);
}
