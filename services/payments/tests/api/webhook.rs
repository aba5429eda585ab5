//! `POST /api/payments/webhook`: signed Stripe events complete, fail or
//! refund payments; forged, stale and repeated events change nothing.

use common::events::PaymentCreated;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::{
    User, WEBHOOK_SECRET, charge_succeeds, event_id, first_message, intent, intent_id,
    mount_refunds, spawn_app, spawn_simulated_app, stripe_event,
};

fn signed(payload: &str, secret: &str, timestamp: i64) -> String {
    stripe_webhook::Webhook::generate_test_header(payload, secret, Some(timestamp))
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

async fn webhook_events(app: &crate::helpers::TestApp) -> i64 {
    app.count("SELECT count(*) FROM webhook_events").await
}

#[tokio::test]
async fn a_correctly_signed_event_is_accepted_and_recorded() {
    let app = spawn_app().await;
    let payload = stripe_event(&event_id(), "charge.updated", json!({"id": "ch_1"}));

    let response = app.send_webhook(&payload).await;

    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body, json!({"received": true}));
    assert_eq!(webhook_events(&app).await, 1);
}

#[tokio::test]
async fn an_event_signed_with_another_secret_is_a_400() {
    let app = spawn_app().await;
    let payload = stripe_event(&event_id(), "charge.updated", json!({"id": "ch_1"}));

    let response = app
        .post_webhook(&payload, Some(signed(&payload, "whsec_forged", now())))
        .await;

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        body,
        json!({"errors": [{"message": "Invalid webhook signature"}]})
    );
    assert_eq!(webhook_events(&app).await, 0);
}

#[tokio::test]
async fn a_body_changed_after_signing_is_a_400() {
    let app = spawn_app().await;
    let payload = stripe_event(&event_id(), "charge.updated", json!({"id": "ch_1"}));
    let signature = signed(&payload, WEBHOOK_SECRET, now());

    let response = app
        .post_webhook(&payload.replace("ch_1", "ch_2"), Some(signature))
        .await;

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(webhook_events(&app).await, 0);
}

#[tokio::test]
async fn an_event_signed_more_than_five_minutes_ago_is_a_400() {
    let app = spawn_app().await;
    let payload = stripe_event(&event_id(), "charge.updated", json!({"id": "ch_1"}));

    let response = app
        .post_webhook(
            &payload,
            Some(signed(&payload, WEBHOOK_SECRET, now() - 301)),
        )
        .await;

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        first_message(&body),
        "Webhook timestamp is outside the tolerance"
    );
    assert_eq!(webhook_events(&app).await, 0);
}

#[tokio::test]
async fn an_event_without_a_signature_is_a_400() {
    let app = spawn_app().await;
    let payload = stripe_event(&event_id(), "charge.updated", json!({"id": "ch_1"}));

    let response = app.post_webhook(&payload, None).await;

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.expect("json");
    assert_eq!(first_message(&body), "Missing Stripe-Signature header");
}

#[tokio::test]
async fn a_charge_still_processing_is_completed_by_its_succeeded_webhook() {
    let app = spawn_app().await;
    let buyer = User::new();
    let order = app.seed_order(buyer.id, 2000).await;
    let pi = intent_id();
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .respond_with(ResponseTemplate::new(200).set_body_json(intent(
            &pi,
            2000,
            "processing",
            json!({}),
        )))
        .expect(1)
        .mount(&app.stripe)
        .await;
    let response = app.pay(&buyer, order, "tok_visa").await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let body: Value = response.json().await.expect("json");
    let payment_id = body["id"].as_str().unwrap_or_default().to_string();
    assert_eq!(
        app.payments_of(order).await,
        vec![("pending".into(), Some(pi.clone()))]
    );
    assert_eq!(app.count("SELECT count(*) FROM outbox").await, 0);

    let succeeded = intent(
        &pi,
        2000,
        "succeeded",
        json!({"orderId": order, "paymentId": payment_id}),
    );
    let response = app
        .send_webhook(&stripe_event(
            &event_id(),
            "payment_intent.succeeded",
            succeeded,
        ))
        .await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        app.payments_of(order).await,
        vec![("succeeded".into(), Some(pi.clone()))]
    );
    let events = app.wait_for_published::<PaymentCreated>(1).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].order_id, order);
    assert_eq!(events[0].stripe_id, pi);
    assert_eq!(events[0].id.to_string(), payment_id);
}

#[tokio::test]
async fn a_repeated_event_id_is_acknowledged_without_effect() {
    let app = spawn_app().await;
    let first_order = app.seed_order(User::new().id, 2000).await;
    let second_order = app.seed_order(User::new().id, 2000).await;
    let id = event_id();
    let about = |order: Uuid| {
        stripe_event(
            &id,
            "payment_intent.succeeded",
            intent(&intent_id(), 2000, "succeeded", json!({"orderId": order})),
        )
    };

    let first = app.send_webhook(&about(first_order)).await;
    let repeated = app.send_webhook(&about(second_order)).await;

    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(repeated.status(), StatusCode::OK);
    let body: Value = repeated.json().await.expect("json");
    assert_eq!(body, json!({"received": true, "duplicate": true}));
    assert_eq!(app.payments_of(first_order).await.len(), 1);
    assert!(
        app.payments_of(second_order).await.is_empty(),
        "the event id was seen before, so its (new) content was not applied"
    );
    assert_eq!(webhook_events(&app).await, 1);
    assert_eq!(app.wait_for_published::<PaymentCreated>(1).await.len(), 1);
}

#[tokio::test]
async fn a_failed_intent_marks_its_payment_failed_and_the_order_stays_payable() {
    let app = spawn_app().await;
    let buyer = User::new();
    let order = app.seed_order(buyer.id, 2000).await;
    let pi = intent_id();
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .respond_with(ResponseTemplate::new(200).set_body_json(intent(
            &pi,
            2000,
            "processing",
            json!({}),
        )))
        .up_to_n_times(1)
        .mount(&app.stripe)
        .await;
    let pi_second = intent_id();
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .respond_with(charge_succeeds(&pi_second, 2000))
        .mount(&app.stripe)
        .await;
    assert_eq!(
        app.pay(&buyer, order, "tok_visa").await.status(),
        StatusCode::ACCEPTED
    );
    let mut failed = intent(
        &pi,
        2000,
        "requires_payment_method",
        json!({"orderId": order}),
    );
    failed["last_payment_error"] =
        json!({"type": "card_error", "message": "Your card has insufficient funds."});

    let response = app
        .send_webhook(&stripe_event(
            &event_id(),
            "payment_intent.payment_failed",
            failed,
        ))
        .await;

    assert_eq!(response.status(), StatusCode::OK);
    let message: Option<String> =
        sqlx::query_scalar("SELECT failure_message FROM payments WHERE stripe_id = $1")
            .bind(&pi)
            .fetch_one(&app.db.pool)
            .await
            .expect("the payment");
    assert_eq!(
        message.as_deref(),
        Some("Your card has insufficient funds.")
    );
    assert_eq!(
        app.payments_of(order).await,
        vec![("failed".into(), Some(pi))]
    );
    assert_eq!(
        app.pay(&buyer, order, "tok_visa").await.status(),
        StatusCode::CREATED,
        "the order is still payable"
    );
}

#[tokio::test]
async fn a_succeeded_intent_for_a_cancelled_order_is_refunded() {
    let app = spawn_app().await;
    let order = app.seed_order(User::new().id, 2000).await;
    mount_refunds(&app.stripe).await;
    app.cancel(order, 1).await;
    assert!(app.replica_reaches(order, "cancelled").await);
    let pi = intent_id();

    let response = app
        .send_webhook(&stripe_event(
            &event_id(),
            "payment_intent.succeeded",
            intent(&pi, 2000, "succeeded", json!({"orderId": order})),
        ))
        .await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        app.payments_of(order).await,
        vec![("refunded".into(), Some(pi.clone()))]
    );
    let refunds = app.stripe_calls("/v1/refunds").await;
    assert_eq!(refunds.len(), 1);
    assert_eq!(refunds[0].form.get("payment_intent"), Some(&pi));
    assert_eq!(app.refunds_of(order).await.len(), 1);
    assert_eq!(
        app.count("SELECT count(*) FROM outbox WHERE subject = 'payment.created'")
            .await,
        0
    );
}

#[tokio::test]
async fn a_succeeded_intent_for_a_recent_order_not_yet_replicated_fails_so_that_stripe_retries() {
    let app = spawn_app().await;
    // A new order id: the order may still be on its way to the replica.
    let order = Uuid::now_v7();
    let payload = stripe_event(
        &event_id(),
        "payment_intent.succeeded",
        intent(&intent_id(), 2000, "succeeded", json!({"orderId": order})),
    );

    let response = app.send_webhook(&payload).await;

    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        webhook_events(&app).await,
        0,
        "not recorded, so a retry is handled"
    );
}

#[tokio::test]
async fn a_succeeded_intent_for_an_order_that_is_not_ours_is_acknowledged_and_counted() {
    let app = spawn_app().await;
    // Another application's order ids: a random UUID, and an order id made
    // two hours ago that never reached this deployment.
    let two_hours_ago = chrono::Utc::now() - chrono::Duration::hours(2);
    let old = Uuid::new_v7(uuid::Timestamp::from_unix(
        uuid::NoContext,
        u64::try_from(two_hours_ago.timestamp()).expect("after 1970"),
        0,
    ));
    let before = foreign_events(&app).await;

    for order in [Uuid::new_v4(), old] {
        let payload = stripe_event(
            &event_id(),
            "payment_intent.succeeded",
            intent(
                &intent_id(),
                2000,
                "succeeded",
                json!({"orderId": order, "paymentId": Uuid::now_v7()}),
            ),
        );
        let response = app.send_webhook(&payload).await;
        assert_eq!(response.status(), StatusCode::OK, "order {order}");
    }

    assert_eq!(
        webhook_events(&app).await,
        2,
        "recorded: a repeat is a duplicate"
    );
    assert_eq!(app.count("SELECT count(*) FROM payments").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM outbox").await, 0);
    assert!(foreign_events(&app).await >= before + 2.0);
}

#[tokio::test]
async fn a_succeeded_intent_naming_no_order_is_acknowledged_and_counted() {
    let app = spawn_app().await;
    let before = foreign_events(&app).await;

    let response = app
        .send_webhook(&stripe_event(
            &event_id(),
            "payment_intent.succeeded",
            intent(&intent_id(), 2000, "succeeded", json!({})),
        ))
        .await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(app.count("SELECT count(*) FROM payments").await, 0);
    assert!(foreign_events(&app).await > before);
}

/// `payments_webhook_foreign_events_total` on the service's `/metrics` (the
/// recorder is per process, so other tests may add to it too).
async fn foreign_events(app: &crate::helpers::TestApp) -> f64 {
    let page = app
        .get("/metrics")
        .await
        .text()
        .await
        .expect("metrics page");
    common::metrics::scrape::value(&page, "payments_webhook_foreign_events_total", &[])
        .unwrap_or(0.0)
}

#[tokio::test]
async fn without_a_webhook_secret_the_webhook_answers_503_saying_why() {
    let app = spawn_simulated_app().await;
    let payload = stripe_event(&event_id(), "charge.updated", json!({"id": "ch_1"}));

    let response = app
        .post_webhook(&payload, Some(signed(&payload, WEBHOOK_SECRET, now())))
        .await;

    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = response.json().await.expect("json");
    assert!(
        first_message(&body).contains("STRIPE_WEBHOOK_SECRET"),
        "{body}"
    );
    assert_eq!(webhook_events(&app).await, 0);
}
