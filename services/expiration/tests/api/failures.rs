//! Nothing is lost while NATS or Redis is down: a job whose publish fails is
//! retried until NATS is back (by the same instance, or by the next one if
//! the service stops first), and an `order.created` that cannot be stored as
//! a job is not acknowledged, so it comes back.

use std::time::Duration;

use apalis::prelude::Status;
use chrono::Utc;
use common::testing::{NatsServer, eventually};

use crate::helpers::{Harness, WAIT, closed_redis_url, order_expiring_in};

#[tokio::test]
async fn a_job_that_cannot_publish_while_nats_is_down_publishes_once_nats_is_back() {
    let mut nats = NatsServer::start();
    let h = Harness::on_nats(nats.url()).await;
    let _service = h.start().await;
    let order = order_expiring_in(Duration::from_secs(2));
    h.publish_order(&order).await;
    assert!(h.job_stored(order.id).await);

    nats.stop();
    // Longer than a publish waits for its acknowledgement, so that the job's
    // first attempts fail rather than wait for NATS to come back.
    let outage = common::bus::PUBLISH_ACK_TIMEOUT + Duration::from_secs(1);
    let overdue = (order.expires_at - Utc::now()).to_std().unwrap_or_default() + outage;
    tokio::time::sleep(overdue).await;
    assert!(
        Utc::now() > order.expires_at,
        "the job came due while NATS was down"
    );
    nats.resume();

    let reconnected = eventually(Duration::from_secs(15), || async {
        h.bus.client().connection_state() == async_nats::connection::State::Connected
    })
    .await;
    assert!(reconnected, "the test's own connection is back");
    let events = h.wait_for_expirations(1, Duration::from_secs(15)).await;
    assert_eq!(events[0].order_id, order.id);
    assert!(
        events[0].stored_at >= order.expires_at + outage,
        "stored only after NATS came back"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(h.expirations().await.len(), 1, "exactly one");
}

#[tokio::test]
async fn a_job_cut_short_by_a_shutdown_while_nats_is_down_runs_again_on_the_next_instance() {
    let mut nats = NatsServer::start();
    let h = Harness::on_nats(nats.url()).await;
    let first = h.start().await;
    let order = order_expiring_in(Duration::from_secs(1));
    h.publish_order(&order).await;
    assert!(h.job_stored(order.id).await);

    nats.stop();
    let running = eventually(WAIT, || async {
        h.job_status(order.id).await == Some(Status::Running)
    })
    .await;
    assert!(running, "the job came due and started while NATS was down");
    // Long enough for its first publish to time out and a retry to begin.
    tokio::time::sleep(common::bus::PUBLISH_ACK_TIMEOUT + Duration::from_secs(1)).await;
    first.stop().await;
    assert_eq!(
        h.job_status(order.id).await,
        Some(Status::Failed),
        "kept in Redis for another run, not marked done"
    );

    nats.resume();
    let _second = h.start().await;
    let reconnected = eventually(Duration::from_secs(15), || async {
        h.bus.client().connection_state() == async_nats::connection::State::Connected
    })
    .await;
    assert!(reconnected, "the test's own connection is back");
    let events = h.wait_for_expirations(1, WAIT).await;
    assert_eq!(events[0].order_id, order.id);
    let done = eventually(WAIT, || async {
        h.job_status(order.id).await == Some(Status::Done)
    })
    .await;
    assert!(done, "the second run completed the job");
    assert_eq!(h.expirations().await.len(), 1, "exactly one");
}

#[tokio::test]
async fn an_order_created_is_acknowledged_only_once_its_job_is_stored() {
    let h = Harness::new().await;
    let without_redis = h.start_with_redis(closed_redis_url()).await;
    let order = order_expiring_in(Duration::from_secs(1));

    h.publish_order(&order).await;
    let tried = eventually(WAIT, || async { h.order_created_consumer().await.0 >= 1 }).await;
    assert!(tried, "the order.created was delivered");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        h.order_created_consumer().await.1,
        0,
        "not acknowledged while Redis is unreachable"
    );
    assert_eq!(h.job_status(order.id).await, None);
    without_redis.stop().await;

    let _with_redis = h.start().await;
    let events = h.wait_for_expirations(1, Duration::from_secs(15)).await;
    assert_eq!(events[0].order_id, order.id);
    let acked = eventually(WAIT, || async { h.order_created_consumer().await.1 >= 1 }).await;
    assert!(acked, "acknowledged once the job was stored");
}
