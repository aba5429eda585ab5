//! Jobs live in Redis, not in the process: they survive a restart, and one
//! that fell due while no instance ran fires as soon as one starts.

use std::time::Duration;

use chrono::Utc;
use tokio::time::Instant;

use crate::helpers::{Harness, WAIT, order_expiring_in};

#[tokio::test]
async fn a_job_fires_after_the_service_was_restarted_before_it_was_due() {
    let h = Harness::new().await;
    let first = h.start().await;
    let order = order_expiring_in(Duration::from_secs(3));
    h.publish_order(&order).await;
    assert!(h.job_stored(order.id).await);

    first.stop().await;
    assert!(
        Utc::now() < order.expires_at,
        "stopped before the job was due"
    );
    let _second = h.start().await;

    let events = h.wait_for_expirations(1, WAIT).await;
    assert_eq!(events[0].order_id, order.id);
    assert!(
        events[0].stored_at >= order.expires_at,
        "not before expiresAt"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(h.expirations().await.len(), 1, "exactly one");
}

#[tokio::test]
async fn a_job_that_fell_due_while_the_service_was_down_fires_as_soon_as_it_is_back() {
    let h = Harness::new().await;
    let first = h.start().await;
    let order = order_expiring_in(Duration::from_secs(1));
    h.publish_order(&order).await;
    assert!(h.job_stored(order.id).await);
    first.stop().await;

    let overdue =
        (order.expires_at - Utc::now()).to_std().unwrap_or_default() + Duration::from_millis(1500);
    tokio::time::sleep(overdue).await;
    assert!(
        h.expirations().await.is_empty(),
        "nothing runs while the service is down"
    );

    let started = Instant::now();
    let _second = h.start().await;
    h.wait_for_expirations(1, WAIT).await;
    let delay = started.elapsed();

    eprintln!(
        "the overdue job fired {} ms after the service started",
        delay.as_millis()
    );
    assert!(delay < Duration::from_secs(3), "promptly: {delay:?}");
    assert_eq!(h.expirations().await[0].order_id, order.id);
}
