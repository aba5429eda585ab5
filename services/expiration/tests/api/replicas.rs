//! Replicas share one queue and one durable consumer: every order gets its
//! `expiration.complete` once, whichever replica scheduled or ran its job.

use std::collections::HashSet;
use std::time::Duration;

use expiration::events::expiration_complete;

use crate::helpers::{Harness, order_expiring_in};

#[tokio::test]
async fn two_replicas_publish_one_expiration_complete_per_order() {
    let h = Harness::new().await;
    let _a = h.start().await;
    let _b = h.start().await;
    let orders: Vec<_> = (0..20)
        .map(|i| order_expiring_in(Duration::from_millis(1000 + 50 * i)))
        .collect();

    for order in &orders {
        h.publish_order(order).await;
    }

    let events = h
        .wait_for_expirations(orders.len(), Duration::from_secs(10))
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        h.stream_messages().await,
        orders.len() as u64,
        "one per order"
    );
    let expected: HashSet<_> = orders
        .iter()
        .map(|o| (o.id, Some(expiration_complete::event_id(o.id).to_string())))
        .collect();
    let stored: HashSet<_> = events.into_iter().map(|e| (e.order_id, e.msg_id)).collect();
    assert_eq!(stored, expected);
}
