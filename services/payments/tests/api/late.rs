//! Never a charge without a ticket: a charge for an order that was
//! cancelled while the buyer paid, or after, is refunded, and no
//! payment.created goes out for it.

use std::time::Duration;

use common::testing::eventually;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::{
    User, WAIT, charge_succeeds, first_message, intent_id, mount_charge, mount_refunds, spawn_app,
};

#[tokio::test]
async fn a_charge_that_succeeds_after_the_order_was_cancelled_is_refunded() {
    let app = spawn_app().await;
    let buyer = User::new();
    let order = app.seed_order(buyer.id, 2000).await;
    let pi = intent_id();
    mount_charge(
        &app.stripe,
        charge_succeeds(&pi, 2000).set_delay(Duration::from_secs(3)),
        1,
    )
    .await;
    mount_refunds(&app.stripe).await;

    let paying = app.pay(&buyer, order, "tok_visa");
    // The reservation expires while the card is being charged.
    let cancelling = async {
        let charging = eventually(WAIT, || async {
            app.stripe_calls("/v1/payment_intents").await.len() == 1
        })
        .await;
        app.cancel(order, 1).await;
        let cancelled = app.replica_reaches(order, "cancelled").await;
        (charging && cancelled, app.payments_of(order).await)
    };
    let (response, (cancelled_meanwhile, while_charging)) = tokio::join!(paying, cancelling);

    assert!(cancelled_meanwhile);
    assert_eq!(
        while_charging,
        vec![("pending".into(), None)],
        "the cancellation was applied while the charge was under way"
    );
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        first_message(&body),
        "Order expired while paying; the charge was refunded"
    );
    let payment_id: Uuid = sqlx::query_scalar("SELECT id FROM payments WHERE order_id = $1")
        .bind(order)
        .fetch_one(&app.db.pool)
        .await
        .expect("the payment");
    let refunds = app.stripe_calls("/v1/refunds").await;
    assert_eq!(refunds.len(), 1);
    assert_eq!(
        refunds[0].idempotency_key.as_deref(),
        Some(format!("refund-{payment_id}").as_str())
    );
    assert_eq!(refunds[0].form.get("payment_intent"), Some(&pi));
    let recorded = app.refunds_of(order).await;
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].0, payment_id);
    assert!(recorded[0].1.starts_with("re_test_"), "{}", recorded[0].1);
    assert_eq!(recorded[0].2, "order_cancelled");
    assert_eq!(
        app.payments_of(order).await,
        vec![("refunded".into(), Some(pi))]
    );
    assert_eq!(
        app.count("SELECT count(*) FROM outbox WHERE subject = 'payment.created'")
            .await,
        0,
        "no payment.created for a refunded charge"
    );
    let refunded = app
        .wait_for_published::<common::events::PaymentRefunded>(1)
        .await;
    assert_eq!(refunded.len(), 1);
    assert_eq!(refunded[0].order_id, order);
    assert_eq!(refunded[0].payment_id, payment_id);
    assert_eq!(refunded[0].amount, 2000);
}

#[tokio::test]
async fn an_order_cancelled_after_it_was_paid_has_its_charge_refunded() {
    let app = spawn_app().await;
    let buyer = User::new();
    let order = app.seed_order(buyer.id, 2000).await;
    let pi = intent_id();
    mount_charge(&app.stripe, charge_succeeds(&pi, 2000), 1).await;
    mount_refunds(&app.stripe).await;
    assert_eq!(
        app.pay(&buyer, order, "tok_visa").await.status(),
        StatusCode::CREATED
    );

    // The orders service expired the order while payment.created was in flight.
    app.cancel(order, 1).await;

    let refunded = eventually(WAIT, || async { app.refunds_of(order).await.len() == 1 }).await;
    assert!(refunded, "the listener refunded the charge");
    assert_eq!(app.refunds_of(order).await[0].2, "order_cancelled");
    assert_eq!(
        app.payments_of(order).await,
        vec![("refunded".into(), Some(pi.clone()))]
    );
    let refunds = app.stripe_calls("/v1/refunds").await;
    assert_eq!(refunds.len(), 1);
    assert_eq!(refunds[0].form.get("payment_intent"), Some(&pi));
    assert_eq!(app.replica(order).await, Some(("cancelled".into(), 1)));
}

#[tokio::test]
async fn a_refund_that_failed_is_made_by_the_reconciler() {
    let app = spawn_app().await;
    let buyer = User::new();
    let order = app.seed_order(buyer.id, 2000).await;
    let pi = intent_id();
    mount_charge(
        &app.stripe,
        charge_succeeds(&pi, 2000).set_delay(Duration::from_secs(2)),
        1,
    )
    .await;
    Mock::given(method("POST"))
        .and(path("/v1/refunds"))
        .respond_with(ResponseTemplate::new(500).set_body_json(json!({"error": {
            "type": "api_error", "message": "An unknown error occurred"
        }})))
        .up_to_n_times(1)
        .mount(&app.stripe)
        .await;
    mount_refunds(&app.stripe).await;
    let paying = app.pay(&buyer, order, "tok_visa");
    let cancelling = async {
        eventually(WAIT, || async {
            app.stripe_calls("/v1/payment_intents").await.len() == 1
        })
        .await;
        app.cancel(order, 1).await;
        app.replica_reaches(order, "cancelled").await
    };
    let (response, cancelled) = tokio::join!(paying, cancelling);
    assert!(cancelled);
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        app.payments_of(order).await,
        vec![("refunding".into(), Some(pi.clone()))]
    );
    assert!(app.refunds_of(order).await.is_empty());

    let refunded = payments::reconcile::pass(&app.db.pool, &app.provider(), 0.0)
        .await
        .expect("a reconciler pass");

    assert_eq!(refunded, 1);
    assert_eq!(app.refunds_of(order).await.len(), 1);
    assert_eq!(
        app.payments_of(order).await,
        vec![("refunded".into(), Some(pi))]
    );
    let keys: Vec<Option<String>> = app
        .stripe_calls("/v1/refunds")
        .await
        .into_iter()
        .map(|c| c.idempotency_key)
        .collect();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0], keys[1], "the retry is the same refund for Stripe");
    assert_eq!(
        payments::reconcile::pass(&app.db.pool, &app.provider(), 0.0)
            .await
            .expect("a second pass"),
        0,
        "nothing is refunded twice"
    );
}
