//! `expiration.complete`: an unpaid order runs out of time.

use common::events::{ExpirationComplete, OrderCancelled};
use common::listener::{Delivery, Listener, Outcome};
use common::testing::eventually;
use orders::events::ExpirationCompleteListener;
use reqwest::StatusCode;
use uuid::Uuid;

use crate::helpers::{User, WAIT, spawn_app};

fn expiration(id: Uuid, order_id: Uuid) -> Delivery<ExpirationComplete> {
    Delivery {
        id,
        event: ExpirationComplete { order_id },
        attempt: 1,
    }
}

#[tokio::test]
async fn expiration_cancels_a_created_order_and_publishes_order_cancelled() {
    let app = spawn_app().await;
    let ticket = app.ticket().await;
    let order = app.create_order(&User::new(), ticket).await;

    app.publish(&ExpirationComplete { order_id: order }).await;

    assert!(app.order_reaches(order, "cancelled").await);
    assert_eq!(app.order_row(order).await, ("cancelled".into(), 1));
    let events = app.wait_for_published::<OrderCancelled>(1).await;
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].id, events[0].version, events[0].ticket.id),
        (order, 1, ticket)
    );
}

#[tokio::test]
async fn an_expired_order_frees_its_ticket_for_another_buyer() {
    let app = spawn_app().await;
    let ticket = app.ticket().await;
    let order = app.create_order(&User::new(), ticket).await;

    app.publish(&ExpirationComplete { order_id: order }).await;
    assert!(app.order_reaches(order, "cancelled").await);

    let response = app.post_order(&User::new(), ticket).await;
    assert_eq!(response.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn the_same_expiration_delivered_twice_cancels_once() {
    let app = spawn_app().await;
    let order = app.create_order(&User::new(), app.ticket().await).await;
    let listener = ExpirationCompleteListener::new(app.db.pool.clone());
    let event_id = Uuid::now_v7();

    let first = listener
        .handle(expiration(event_id, order))
        .await
        .expect("handled");
    let second = listener
        .handle(expiration(event_id, order))
        .await
        .expect("handled");

    assert_eq!(first, Outcome::Applied);
    assert_eq!(second, Outcome::Duplicate, "the inbox has seen it");
    assert_eq!(app.order_row(order).await, ("cancelled".into(), 1));
    assert_eq!(app.wait_for_published::<OrderCancelled>(1).await.len(), 1);
}

#[tokio::test]
async fn two_expirations_of_one_order_emit_one_order_cancelled() {
    let app = spawn_app().await;
    let order = app.create_order(&User::new(), app.ticket().await).await;

    // Two event ids: both reach the listener; the second finds the order
    // already cancelled.
    app.publish(&ExpirationComplete { order_id: order }).await;
    app.publish(&ExpirationComplete { order_id: order }).await;

    let both_handled = eventually(WAIT, || async { app.inbox_rows().await == 2 }).await;
    assert!(both_handled);
    assert_eq!(app.order_row(order).await, ("cancelled".into(), 1));
    assert_eq!(app.wait_for_published::<OrderCancelled>(1).await.len(), 1);
    assert_eq!(
        app.count("SELECT count(*) FROM outbox WHERE subject = 'order.cancelled'")
            .await,
        1
    );
}

#[tokio::test]
async fn expiration_leaves_a_complete_order_complete() {
    let app = spawn_app().await;
    let order = app.create_order(&User::new(), app.ticket().await).await;
    app.force_status(order, "complete").await;

    app.publish(&ExpirationComplete { order_id: order }).await;

    let handled = eventually(WAIT, || async { app.inbox_rows().await == 1 }).await;
    assert!(handled);
    assert_eq!(app.order_row(order).await, ("complete".into(), 1));
    assert_eq!(
        app.count("SELECT count(*) FROM outbox WHERE subject = 'order.cancelled'")
            .await,
        0
    );
}

#[tokio::test]
async fn expiration_of_an_unknown_order_fails_so_that_it_is_retried() {
    let app = spawn_app().await;
    let listener = ExpirationCompleteListener::new(app.db.pool.clone());

    let result = listener
        .handle(expiration(Uuid::now_v7(), Uuid::now_v7()))
        .await;

    assert!(result.is_err());
    assert_eq!(
        app.inbox_rows().await,
        0,
        "rolled back, so a redelivery is not taken for a duplicate"
    );
}
