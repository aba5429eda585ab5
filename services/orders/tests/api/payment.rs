//! `payment.created`: a paid order completes.

use common::events::{OrderCompleted, PaymentCreated, TicketRef};
use common::listener::{Delivery, Listener, Outcome};
use orders::events::PaymentCreatedListener;
use reqwest::StatusCode;
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::{User, first_message, spawn_app};

fn payment(id: Uuid, order_id: Uuid) -> Delivery<PaymentCreated> {
    Delivery {
        id,
        event: PaymentCreated {
            id: Uuid::now_v7(),
            order_id,
            stripe_id: "ch_test".into(),
        },
        attempt: 1,
    }
}

#[tokio::test]
async fn a_payment_completes_the_order_publishes_order_completed_and_its_ticket_stays_unavailable()
{
    let app = spawn_app().await;
    let buyer = User::new();
    let ticket = app.ticket().await;
    let order = app.create_order(&buyer, ticket).await;

    app.publish(&PaymentCreated {
        id: Uuid::now_v7(),
        order_id: order,
        stripe_id: "ch_test".into(),
    })
    .await;

    assert!(app.order_reaches(order, "complete").await);
    assert_eq!(app.order_row(order).await, ("complete".into(), 1));
    let response = app.post_order(&User::new(), ticket).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.expect("json");
    assert_eq!(first_message(&body), "Ticket is already reserved");
    let completed = app.wait_for_published::<OrderCompleted>(1).await;
    assert_eq!(
        completed,
        vec![OrderCompleted {
            id: order,
            version: 1,
            ticket: TicketRef { id: ticket },
        }],
        "completion emits order.completed at the order's new version"
    );
}

#[tokio::test]
async fn a_payment_for_a_cancelled_order_leaves_it_cancelled() {
    let app = spawn_app().await;
    let buyer = User::new();
    let order = app.create_order(&buyer, app.ticket().await).await;
    app.delete(&format!("/api/orders/{order}"), Some(&buyer))
        .await;
    let listener = PaymentCreatedListener::new(app.db.pool.clone());

    let outcome = listener
        .handle(payment(Uuid::now_v7(), order))
        .await
        .expect("handled");

    assert_eq!(outcome, Outcome::Applied);
    assert_eq!(app.order_row(order).await, ("cancelled".into(), 1));
}

#[tokio::test]
async fn the_same_payment_delivered_twice_is_applied_once() {
    let app = spawn_app().await;
    let order = app.create_order(&User::new(), app.ticket().await).await;
    let listener = PaymentCreatedListener::new(app.db.pool.clone());
    let event_id = Uuid::now_v7();

    let first = listener
        .handle(payment(event_id, order))
        .await
        .expect("handled");
    let second = listener
        .handle(payment(event_id, order))
        .await
        .expect("handled");

    assert_eq!(first, Outcome::Applied);
    assert_eq!(second, Outcome::Duplicate);
    assert_eq!(app.order_row(order).await, ("complete".into(), 1));
}

#[tokio::test]
async fn a_payment_for_an_unknown_order_fails_so_that_it_is_retried() {
    let app = spawn_app().await;
    let listener = PaymentCreatedListener::new(app.db.pool.clone());

    let result = listener
        .handle(payment(Uuid::now_v7(), Uuid::now_v7()))
        .await;

    assert!(result.is_err());
    assert_eq!(app.inbox_rows().await, 0);
}
