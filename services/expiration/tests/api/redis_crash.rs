//! Drill: Redis is killed (`kill -9`) and restarted from its append-only
//! file while 200 reservations wait to expire. Every one still expires,
//! exactly once.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use chrono::Utc;
use common::testing::{self, RedisServer};
use uuid::Uuid;

use crate::helpers::{Harness, order_expiring_in};

const RESERVATIONS: usize = 200;
/// How long Redis stays dead.
const OUTAGE: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_one_of_200_reservations_expires_once_across_a_kill_9_and_restart_of_redis() {
    let mut redis = RedisServer::start();
    let h = Harness::on_servers(testing::nats_url(), redis.url()).await;
    let _service = h.start().await;
    // Due a few seconds after Redis is back.
    let orders: Vec<_> = (0..RESERVATIONS)
        .map(|_| order_expiring_in(Duration::from_secs(8)))
        .collect();
    for order in &orders {
        h.publish_order(order).await;
    }
    let stored = testing::eventually(Duration::from_secs(20), || async {
        let mut n = 0;
        for order in &orders {
            if h.job_status(order.id).await.is_some() {
                n += 1;
            }
        }
        n == RESERVATIONS
    })
    .await;
    assert!(stored, "every job stored in Redis");
    // appendfsync everysec: what is older than a second is on disk.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let due = orders.iter().map(|o| o.expires_at).max().expect("orders");
    assert!(Utc::now() + OUTAGE < due, "killed well before they are due");

    redis.kill();
    tokio::time::sleep(OUTAGE).await;
    redis.resume();
    let resumed = Instant::now();

    let events = h
        .wait_for_expirations(RESERVATIONS, Duration::from_secs(30))
        .await;
    let all_expired = (Utc::now() - due).to_std().unwrap_or_default();
    let expected: HashSet<Uuid> = orders.iter().map(|o| o.id).collect();
    let expired: HashSet<Uuid> = events.iter().map(|e| e.order_id).collect();
    eprintln!(
        "Redis kill drill: {RESERVATIONS} jobs, Redis down {OUTAGE:?}; all expired {:?} after Redis came back, \
         the last {all_expired:?} after it was due",
        resumed.elapsed()
    );
    assert_eq!(expired, expected, "every reservation expired");
    let due_at: HashMap<Uuid, _> = orders.iter().map(|o| (o.id, o.expires_at)).collect();
    assert!(
        events.iter().all(|e| e.stored_at >= due_at[&e.order_id]),
        "none before it was due"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        h.expirations().await.len(),
        RESERVATIONS,
        "each exactly once"
    );
}
