//! An `order.created` becomes one `expiration.complete`, on time, with the
//! stable message id, however often it is delivered.

use std::time::Duration;

use apalis::prelude::Status;
use chrono::Utc;
use common::listener::{Delivery, Listener, Outcome};
use expiration::events::{OrderCreatedListener, expiration_complete};
use uuid::Uuid;

use crate::helpers::{Harness, WAIT, order_expiring_in};

#[tokio::test]
async fn an_order_expiring_in_two_seconds_gets_one_expiration_complete_not_before_its_time() {
    let h = Harness::new().await;
    let _service = h.start().await;
    let order = order_expiring_in(Duration::from_secs(2));

    h.publish_order(&order).await;

    let events = h.wait_for_expirations(1, WAIT).await;
    let lateness = events[0].stored_at - order.expires_at;
    eprintln!(
        "expiration.complete stored {} ms after expiresAt",
        lateness.num_milliseconds()
    );
    assert_eq!(events[0].order_id, order.id);
    assert_eq!(
        events[0].msg_id,
        Some(expiration_complete::event_id(order.id).to_string()),
        "the stable message id"
    );
    assert!(
        lateness.num_milliseconds() >= 0,
        "not before expiresAt: {lateness}"
    );
    // The worker polls Redis every 250 ms; the rest is headroom for a busy machine.
    assert!(
        lateness.num_milliseconds() < 1500,
        "within 1.5 s of expiresAt: {lateness}"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(h.expirations().await.len(), 1, "exactly one");
    assert_eq!(h.job_status(order.id).await, Some(Status::Done));
}

#[tokio::test]
async fn an_order_that_already_expired_is_expired_at_once() {
    let h = Harness::new().await;
    let _service = h.start().await;
    let mut order = order_expiring_in(Duration::ZERO);
    order.expires_at = Utc::now() - chrono::Duration::minutes(5);

    h.publish_order(&order).await;

    let events = h.wait_for_expirations(1, Duration::from_secs(5)).await;
    assert_eq!(events[0].order_id, order.id);
}

#[tokio::test]
async fn the_same_order_created_delivered_twice_stores_one_expiration_complete() {
    let h = Harness::new().await;
    let _service = h.start().await;
    let order = order_expiring_in(Duration::from_secs(1));

    // Two messages (two message ids), so that the listener handles both.
    h.publish_order(&order).await;
    h.publish_order(&order).await;

    let both_acked = common::testing::eventually(WAIT, || async {
        h.order_created_consumer().await == (2, 2)
    })
    .await;
    assert!(both_acked, "both deliveries were handled and acknowledged");
    h.wait_for_expirations(1, WAIT).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let events = h.expirations().await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(h.stream_messages().await, 1);
}

#[tokio::test]
async fn publishing_an_orders_expiration_twice_stores_it_once() {
    let h = Harness::new().await;
    let order = Uuid::now_v7();

    let first = expiration_complete::publish(&h.bus, order)
        .await
        .expect("published");
    let second = expiration_complete::publish(&h.bus, order)
        .await
        .expect("published");

    assert_eq!(first, second, "the same message id");
    assert_eq!(
        h.stream_messages().await,
        1,
        "JetStream dropped the duplicate"
    );
    let events = h.expirations().await;
    assert_eq!(events[0].msg_id, Some(first.to_string()));
}

#[tokio::test]
async fn the_listener_schedules_one_job_per_order_and_reports_repeats_as_duplicates() {
    let h = Harness::new().await;
    let listener = OrderCreatedListener::new(h.jobs.clone());
    let order = order_expiring_in(Duration::from_secs(600));
    let delivery = |id| Delivery {
        id,
        event: order.clone(),
        attempt: 1,
    };

    let first = listener
        .handle(delivery(Uuid::now_v7()))
        .await
        .expect("handled");
    let second = listener
        .handle(delivery(Uuid::now_v7()))
        .await
        .expect("handled");

    assert_eq!(first, Outcome::Applied);
    assert_eq!(second, Outcome::Duplicate);
    assert_eq!(h.job_status(order.id).await, Some(Status::Pending));
    assert_eq!(
        h.job_status(Uuid::now_v7()).await,
        None,
        "no job for another order"
    );
}
