//! The orders replica, kept from order.created, order.cancelled and order.completed.

use chrono::Utc;
use common::events::{
    OrderCancelled, OrderCompleted, OrderCreated, OrderStatus, OrderTicket, Stream, TicketRef,
};
use common::listener::{Delivery, Listener, Outcome};
use common::testing::eventually;
use payments::events::{OrderCancelledListener, OrderCompletedListener, OrderCreatedListener};
use uuid::Uuid;

use crate::helpers::{User, WAIT, spawn_app};

fn created(id: Uuid, buyer: Uuid, price: i64) -> OrderCreated {
    OrderCreated {
        id,
        version: 0,
        status: OrderStatus::Created,
        user_id: buyer,
        expires_at: Utc::now(),
        ticket: OrderTicket {
            id: Uuid::now_v7(),
            price,
        },
    }
}

fn cancelled(id: Uuid, version: i64) -> OrderCancelled {
    OrderCancelled {
        id,
        version,
        ticket: TicketRef { id: Uuid::now_v7() },
    }
}

fn delivery<E>(event: E) -> Delivery<E> {
    Delivery {
        id: Uuid::now_v7(),
        event,
        attempt: 1,
    }
}

#[tokio::test]
async fn order_events_in_order_keep_the_replica_with_buyer_price_and_status() {
    let app = spawn_app().await;
    let buyer = User::new();
    let id = Uuid::now_v7();

    app.publish(&created(id, buyer.id, 1550)).await;
    let known = eventually(WAIT, || async { app.replica(id).await.is_some() }).await;
    let row: (Uuid, i64) = sqlx::query_as("SELECT user_id, price FROM orders WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db.pool)
        .await
        .expect("the order");
    app.publish(&cancelled(id, 1)).await;

    assert!(known);
    assert_eq!(row, (buyer.id, 1550));
    assert!(app.replica_reaches(id, "cancelled").await);
    assert_eq!(app.replica(id).await, Some(("cancelled".into(), 1)));
}

#[tokio::test]
async fn a_cancellation_before_its_order_is_known_waits_for_it() {
    let app = spawn_app().await;
    let id = Uuid::now_v7();

    app.publish(&cancelled(id, 1)).await;
    let turned_back = eventually(WAIT, || async {
        app.deliveries("order.cancelled").await >= 2
    })
    .await;
    let before_creation = app.replica(id).await;
    app.publish(&created(id, Uuid::now_v7(), 2000)).await;

    assert!(turned_back, "the cancellation was refused and redelivered");
    assert_eq!(before_creation, None);
    assert!(app.replica_reaches(id, "cancelled").await);
    assert!(app.messages(Stream::DeadLetter).await.is_empty());
}

#[tokio::test]
async fn the_replica_listeners_report_applied_duplicate_and_not_yet() {
    let app = spawn_app().await;
    let created_listener = OrderCreatedListener::new(app.db.pool.clone());
    let cancelled_listener = OrderCancelledListener::new(app.db.pool.clone(), app.provider());
    let id = Uuid::now_v7();
    let buyer = Uuid::now_v7();

    let unknown = cancelled_listener
        .handle(delivery(cancelled(id, 1)))
        .await
        .expect("handled");
    let first_create = created_listener
        .handle(delivery(created(id, buyer, 2000)))
        .await
        .expect("handled");
    let again_create = created_listener
        .handle(delivery(created(id, buyer, 9999)))
        .await
        .expect("handled");
    // The orders service completed the order (version 1, no event), then
    // cancelled it: the cancellation is two versions ahead.
    let skipped_ahead = cancelled_listener
        .handle(delivery(cancelled(id, 2)))
        .await
        .expect("handled");
    let again_cancel = cancelled_listener
        .handle(delivery(cancelled(id, 2)))
        .await
        .expect("handled");
    let older_cancel = cancelled_listener
        .handle(delivery(cancelled(id, 1)))
        .await
        .expect("handled");

    assert_eq!(unknown, Outcome::NotYet, "no order yet");
    assert_eq!(first_create, Outcome::Applied);
    assert_eq!(again_create, Outcome::Duplicate);
    assert_eq!(skipped_ahead, Outcome::Applied);
    assert_eq!(again_cancel, Outcome::Duplicate);
    assert_eq!(older_cancel, Outcome::Duplicate);
    assert_eq!(app.replica(id).await, Some(("cancelled".into(), 2)));
    let price: i64 = sqlx::query_scalar("SELECT price FROM orders WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db.pool)
        .await
        .expect("the order");
    assert_eq!(price, 2000, "the duplicate creation changed nothing");
}

fn completed(id: Uuid, version: i64) -> OrderCompleted {
    OrderCompleted {
        id,
        version,
        ticket: TicketRef { id: Uuid::now_v7() },
    }
}

#[tokio::test]
async fn order_completed_marks_the_replica_complete_at_its_version() {
    let app = spawn_app().await;
    let id = Uuid::now_v7();

    app.publish(&completed(id, 1)).await;
    app.publish(&created(id, Uuid::now_v7(), 2000)).await;

    assert!(app.replica_reaches(id, "complete").await);
    assert_eq!(app.replica(id).await, Some(("complete".into(), 1)));
    assert!(app.messages(Stream::DeadLetter).await.is_empty());
}

#[tokio::test]
async fn the_completion_listener_applies_only_the_next_version() {
    let app = spawn_app().await;
    let created_listener = OrderCreatedListener::new(app.db.pool.clone());
    let listener = OrderCompletedListener::new(app.db.pool.clone());
    let id = Uuid::now_v7();

    let unknown = listener
        .handle(delivery(completed(id, 1)))
        .await
        .expect("handled");
    created_listener
        .handle(delivery(created(id, Uuid::now_v7(), 2000)))
        .await
        .expect("handled");
    let early = listener
        .handle(delivery(completed(id, 2)))
        .await
        .expect("handled");
    let applied = listener
        .handle(delivery(completed(id, 1)))
        .await
        .expect("handled");
    let again = listener
        .handle(delivery(completed(id, 1)))
        .await
        .expect("handled");

    assert_eq!(unknown, Outcome::NotYet, "no order yet");
    assert_eq!(early, Outcome::NotYet, "version 2 waits for version 1");
    assert_eq!(applied, Outcome::Applied);
    assert_eq!(again, Outcome::Duplicate);
    assert_eq!(app.replica(id).await, Some(("complete".into(), 1)));
}
