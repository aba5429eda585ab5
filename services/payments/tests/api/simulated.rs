//! Without a Stripe key: the simulated provider honours Stripe's test
//! tokens and the service behaves as it does with Stripe.

use common::events::PaymentCreated;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{User, first_message, spawn_simulated_app};

#[tokio::test]
async fn tok_visa_and_tok_mastercard_pay_with_a_simulated_intent_and_publish_payment_created() {
    let app = spawn_simulated_app().await;
    let buyer = User::new();
    let visa_order = app.seed_order(buyer.id, 2000).await;
    let mastercard_order = app.seed_order(buyer.id, 3000).await;

    let visa = app.pay(&buyer, visa_order, "tok_visa").await;
    let mastercard = app.pay(&buyer, mastercard_order, "tok_mastercard").await;

    assert_eq!(visa.status(), StatusCode::CREATED);
    assert_eq!(mastercard.status(), StatusCode::CREATED);
    let body: Value = visa.json().await.expect("json");
    let stripe_id = body["stripeId"].as_str().unwrap_or_default();
    assert!(stripe_id.starts_with("pi_sim_"), "{body}");
    assert_eq!(body["orderId"], json!(visa_order));
    let events = app.wait_for_published::<PaymentCreated>(2).await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].order_id, visa_order);
    assert_eq!(events[0].stripe_id, stripe_id);
    assert!(
        app.stripe
            .received_requests()
            .await
            .unwrap_or_default()
            .is_empty(),
        "nothing reached Stripe"
    );
}

#[tokio::test]
async fn tok_charge_declined_is_a_402_and_the_order_stays_payable() {
    let app = spawn_simulated_app().await;
    let buyer = User::new();
    let order = app.seed_order(buyer.id, 2000).await;

    let declined = app.pay(&buyer, order, "tok_chargeDeclined").await;
    let retried = app.pay(&buyer, order, "tok_visa").await;

    assert_eq!(declined.status(), StatusCode::PAYMENT_REQUIRED);
    let body: Value = declined.json().await.expect("json");
    assert_eq!(
        body,
        json!({"errors": [{"message": "Your card was declined."}]})
    );
    assert_eq!(retried.status(), StatusCode::CREATED);
    assert_eq!(
        app.payments_of(order)
            .await
            .into_iter()
            .map(|(status, _)| status)
            .collect::<Vec<_>>(),
        vec!["failed", "succeeded"]
    );
}

#[tokio::test]
async fn any_other_token_is_a_400() {
    let app = spawn_simulated_app().await;
    let buyer = User::new();
    let order = app.seed_order(buyer.id, 2000).await;

    let response = app.pay(&buyer, order, "tok_unknown").await;

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.expect("json");
    assert!(
        first_message(&body).starts_with("Invalid card token"),
        "{body}"
    );
    assert_eq!(app.count("SELECT count(*) FROM outbox").await, 0);
}
