//! `POST /api/payments` through Stripe: the charge, what it records and
//! publishes, and the cases where nothing is charged.

use std::time::Duration;

use common::events::{PaymentCreated, Stream};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{
    CURRENCY, STRIPE_KEY, User, charge_succeeds, error_fields, first_message, intent_id,
    mount_charge, spawn_app,
};

#[tokio::test]
async fn paying_an_order_charges_its_price_records_the_payment_and_publishes_payment_created() {
    let app = spawn_app().await;
    let buyer = User::new();
    let order = app.seed_order(buyer.id, 1550).await;
    let pi = intent_id();
    mount_charge(&app.stripe, charge_succeeds(&pi, 1550), 1).await;

    let response = app.pay(&buyer, order, "tok_visa").await;

    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.expect("json");
    let payment_id = body["id"].as_str().and_then(|s| Uuid::parse_str(s).ok());
    assert!(payment_id.is_some(), "{body}");
    assert_eq!(body["orderId"], json!(order));
    assert_eq!(body["stripeId"], json!(pi));
    assert_eq!(body.as_object().map(|o| o.len()), Some(3), "{body}");

    assert_eq!(
        app.payments_of(order).await,
        vec![("succeeded".into(), Some(pi.clone()))]
    );

    let charges = app.stripe_calls("/v1/payment_intents").await;
    assert_eq!(charges.len(), 1);
    let charge = &charges[0];
    assert_eq!(
        charge.idempotency_key.as_deref(),
        Some(format!("order-{order}").as_str())
    );
    assert_eq!(
        charge.authorization.as_deref(),
        Some(format!("Bearer {STRIPE_KEY}").as_str())
    );
    let form = &charge.form;
    assert_eq!(form.get("amount").map(String::as_str), Some("1550"));
    assert_eq!(form.get("currency").map(String::as_str), Some(CURRENCY));
    assert_eq!(form.get("confirm").map(String::as_str), Some("true"));
    assert_eq!(
        form.get("payment_method_data[type]").map(String::as_str),
        Some("card")
    );
    assert_eq!(
        form.get("payment_method_data[card][token]")
            .map(String::as_str),
        Some("tok_visa")
    );
    assert_eq!(
        form.get("automatic_payment_methods[enabled]")
            .map(String::as_str),
        Some("true")
    );
    assert_eq!(
        form.get("automatic_payment_methods[allow_redirects]")
            .map(String::as_str),
        Some("never"),
        "server-side confirmation without a return_url"
    );
    assert_eq!(
        form.get("metadata[orderId]"),
        Some(&order.to_string()),
        "the webhook finds the order through the metadata"
    );
    assert_eq!(
        form.get("metadata[paymentId]").map(String::as_str),
        body["id"].as_str()
    );

    let events = app.wait_for_published::<PaymentCreated>(1).await;
    assert_eq!(
        events,
        vec![PaymentCreated {
            id: payment_id.unwrap_or_default(),
            order_id: order,
            stripe_id: pi,
        }]
    );
    let messages = app.messages(Stream::Payments).await;
    assert!(
        messages[0].headers.get("Nats-Msg-Id").is_some(),
        "published through the outbox, with its event id"
    );
}

#[tokio::test]
async fn paying_a_paid_order_again_is_400_and_charges_nothing_more() {
    let app = spawn_app().await;
    let buyer = User::new();
    let order = app.seed_order(buyer.id, 2000).await;
    mount_charge(&app.stripe, charge_succeeds(&intent_id(), 2000), 1).await;
    let first = app.pay(&buyer, order, "tok_visa").await;
    assert_eq!(first.status(), StatusCode::CREATED);

    let replay = app.pay(&buyer, order, "tok_visa").await;

    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);
    let body: Value = replay.json().await.expect("json");
    assert_eq!(first_message(&body), "Order already paid");
    assert_eq!(app.stripe_calls("/v1/payment_intents").await.len(), 1);
    assert_eq!(app.count("SELECT count(*) FROM payments").await, 1);
    assert_eq!(app.wait_for_published::<PaymentCreated>(1).await.len(), 1);
}

#[tokio::test]
async fn two_concurrent_submits_for_one_order_charge_once_and_publish_once() {
    let app = spawn_app().await;
    let buyer = User::new();
    let order = app.seed_order(buyer.id, 2000).await;
    let pi = intent_id();
    // Slow enough that the second submit arrives while the first is charging.
    mount_charge(
        &app.stripe,
        charge_succeeds(&pi, 2000).set_delay(Duration::from_millis(1500)),
        1,
    )
    .await;

    let (a, b) = tokio::join!(
        app.pay(&buyer, order, "tok_visa"),
        app.pay(&buyer, order, "tok_visa")
    );

    let mut statuses = [a.status(), b.status()];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::CREATED, StatusCode::BAD_REQUEST]);
    let refused = if a.status() == StatusCode::BAD_REQUEST {
        a
    } else {
        b
    };
    let body: Value = refused.json().await.expect("json");
    assert_eq!(first_message(&body), "Order already paid");
    assert_eq!(app.stripe_calls("/v1/payment_intents").await.len(), 1);
    assert_eq!(
        app.payments_of(order).await,
        vec![("succeeded".into(), Some(pi))]
    );
    assert_eq!(app.wait_for_published::<PaymentCreated>(1).await.len(), 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.published::<PaymentCreated>().await.len(), 1);
}

#[tokio::test]
async fn an_unknown_order_is_404_and_another_buyers_order_is_403() {
    let app = spawn_app().await;
    let buyer = User::new();
    let order = app.seed_order(buyer.id, 2000).await;
    mount_charge(&app.stripe, charge_succeeds(&intent_id(), 2000), 0).await;

    let unknown = app.pay(&buyer, Uuid::now_v7(), "tok_visa").await;
    let not_theirs = app.pay(&User::new(), order, "tok_visa").await;

    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert_eq!(not_theirs.status(), StatusCode::FORBIDDEN);
    let body: Value = not_theirs.json().await.expect("json");
    assert_eq!(first_message(&body), "Not allowed");
    assert_eq!(app.count("SELECT count(*) FROM payments").await, 0);
}

#[tokio::test]
async fn a_cancelled_order_cannot_be_paid() {
    let app = spawn_app().await;
    let buyer = User::new();
    let order = app.seed_order(buyer.id, 2000).await;
    mount_charge(&app.stripe, charge_succeeds(&intent_id(), 2000), 0).await;
    app.cancel(order, 1).await;
    assert!(app.replica_reaches(order, "cancelled").await);

    let response = app.pay(&buyer, order, "tok_visa").await;

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.expect("json");
    assert_eq!(first_message(&body), "Cannot pay for a cancelled order");
    assert_eq!(app.count("SELECT count(*) FROM payments").await, 0);
}

#[tokio::test]
async fn an_order_past_its_reservation_cannot_be_paid_even_before_it_is_cancelled() {
    let app = spawn_app().await;
    let buyer = User::new();
    let order = app
        .seed_order_expiring(buyer.id, 2000, chrono::Duration::seconds(-1))
        .await;
    mount_charge(&app.stripe, charge_succeeds(&intent_id(), 2000), 0).await;

    let response = app.pay(&buyer, order, "tok_visa").await;

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        first_message(&body),
        "The reservation has expired: the order can no longer be paid"
    );
    assert_eq!(app.count("SELECT count(*) FROM payments").await, 0);
}

#[tokio::test]
async fn a_body_without_token_and_order_id_is_a_400_with_one_entry_per_field() {
    let app = spawn_app().await;

    let response = app.post_payment_body(Some(&User::new()), &json!({})).await;

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.expect("json");
    assert_eq!(error_fields(&body), vec!["orderId", "token"]);
    assert_eq!(
        body["errors"],
        json!([
            {"field": "orderId", "message": "orderId is required"},
            {"field": "token", "message": "token is required"}
        ])
    );
}

#[tokio::test]
async fn a_malformed_order_id_or_token_is_a_400_on_that_field() {
    let app = spawn_app().await;
    let buyer = User::new();
    let order = app.seed_order(buyer.id, 2000).await;

    let bad_id = app
        .post_payment_body(
            Some(&buyer),
            &json!({"token": "tok_visa", "orderId": "abc"}),
        )
        .await;
    let bad_token = app
        .post_payment_body(Some(&buyer), &json!({"token": 42, "orderId": order}))
        .await;

    assert_eq!(bad_id.status(), StatusCode::BAD_REQUEST);
    let body: Value = bad_id.json().await.expect("json");
    assert_eq!(error_fields(&body), vec!["orderId"]);
    assert_eq!(first_message(&body), "orderId must be a valid id");
    assert_eq!(bad_token.status(), StatusCode::BAD_REQUEST);
    let body: Value = bad_token.json().await.expect("json");
    assert_eq!(error_fields(&body), vec!["token"]);
    assert_eq!(app.count("SELECT count(*) FROM payments").await, 0);
}
