//! Drill: two replicas each of tickets and orders; one replica of each is
//! killed while it is in the middle of handling events (its database hangs
//! behind a fault proxy, so its handlers are stuck mid-transaction). The
//! other replica must take over within 5 s (the ack wait is 4 s, and the
//! dead replica's "in progress" signals stop with it) and have applied
//! everything the dead one held, once, within 10 s.

use std::time::{Duration, Instant};

use common::testing::{self, Fault, FaultProxy, TestDatabase};
use futures::StreamExt as _;

use crate::helpers::{self, Replica, all_ready, count, list_tickets, reserve, until_count};

const RESERVATIONS: usize = 60;
/// By when replica b must have taken over (applied the first event the
/// dead replica held): the ack wait (4 s) and a second.
const TAKE_OVER: Duration = Duration::from_secs(5);
/// By when it must have applied them all.
const ALL_APPLIED: Duration = Duration::from_secs(10);

/// When, after the kill, the surviving replica applied the first and the
/// last of the events the dead one held.
struct TakeOver {
    first: Option<Duration>,
    all: Option<Duration>,
}

/// Leaves `replica` stuck on its hung database for longer than an ack
/// wait (the server, told the events are in progress, leaves them with it),
/// checks that it holds some (`sql` counts the applied ones), kills it and
/// closes its connections as the dead process's would close, and watches
/// the other replica take over. Returns how many it held, and when.
async fn kill_while_stuck(
    replica: &mut Replica,
    proxy: &FaultProxy,
    pool: &sqlx::PgPool,
    sql: &'static str,
) -> (i64, TakeOver) {
    tokio::time::sleep(Duration::from_secs(5)).await;
    let applied = settled(pool, sql).await;
    assert!(
        applied < RESERVATIONS as i64,
        "the replica holds some events ({applied}/{RESERVATIONS} applied)"
    );
    replica.kill();
    // The database ends the dead replica's transactions and frees their locks.
    proxy.set(Fault::Down);
    (
        RESERVATIONS as i64 - applied,
        take_over(pool, sql, applied).await,
    )
}

/// The count of `sql` once it has not moved for a second: replica b has
/// applied its own share, and what is left is what replica a holds.
async fn settled(pool: &sqlx::PgPool, sql: &'static str) -> i64 {
    let mut last = count(pool, sql).await;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = count(pool, sql).await;
        if now == last {
            return now;
        }
        last = now;
    }
}

fn shown(after: Option<Duration>) -> String {
    after.map_or_else(|| "never".to_string(), |d| format!("{d:.2?}"))
}

/// Watches `sql` (a count of applied events, `before` at the kill) until it
/// reaches [`RESERVATIONS`], or 20 s pass.
async fn take_over(pool: &sqlx::PgPool, sql: &'static str, before: i64) -> TakeOver {
    let killed = Instant::now();
    let mut took = TakeOver {
        first: None,
        all: None,
    };
    while killed.elapsed() < Duration::from_secs(20) {
        let applied = count(pool, sql).await;
        if applied > before && took.first.is_none() {
            took.first = Some(killed.elapsed());
        }
        if applied == RESERVATIONS as i64 {
            took.all = Some(killed.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    took
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_a_killed_replica_was_handling_are_taken_over_by_the_other_replica_within_five_seconds()
 {
    let common = testing::common_settings(&testing::unique_prefix());
    let tickets_db = TestDatabase::create_empty().await;
    let orders_db = TestDatabase::create_empty().await;
    // Replica "a" of each service reaches its database through a proxy.
    let tickets_proxy = FaultProxy::in_front_of(&tickets_db.url).await;
    let orders_proxy = FaultProxy::in_front_of(&orders_db.url).await;
    let mut tickets_a = helpers::tickets(&common, &tickets_proxy.route(&tickets_db.url)).await;
    let tickets_b = helpers::tickets(&common, &tickets_db.url).await;
    let mut orders_a = helpers::orders(&common, &orders_proxy.route(&orders_db.url)).await;
    let orders_b = helpers::orders(&common, &orders_db.url).await;
    let client = reqwest::Client::new();
    all_ready(&client, &[&tickets_a, &tickets_b, &orders_a, &orders_b]).await;
    let listed = list_tickets(&client, &tickets_b.address, RESERVATIONS).await;
    assert!(
        until_count(
            &orders_db.pool,
            "SELECT count(*) FROM tickets",
            RESERVATIONS,
            Duration::from_secs(20)
        )
        .await,
        "the orders replica has every ticket"
    );

    // Both "a" replicas get stuck on whatever they take from now on.
    tickets_proxy.set(Fault::Hang);
    orders_proxy.set(Fault::Hang);
    futures::stream::iter(listed)
        .for_each_concurrent(16, |ticket| {
            let client = client.clone();
            let address = orders_b.address.clone();
            async move {
                reserve(&client, &address, ticket).await;
            }
        })
        .await;
    let (tickets_held, tickets_took) = kill_while_stuck(
        &mut tickets_a,
        &tickets_proxy,
        &tickets_db.pool,
        "SELECT count(*) FROM tickets WHERE order_id IS NOT NULL AND version = 1",
    )
    .await;
    // Every ticket.updated is out; orders replica "a" holds its share.
    assert!(testing::outbox_settled(&tickets_db.pool, Duration::from_secs(20)).await);
    let (orders_held, orders_took) = kill_while_stuck(
        &mut orders_a,
        &orders_proxy,
        &orders_db.pool,
        "SELECT count(*) FROM tickets WHERE version = 1",
    )
    .await;

    eprintln!(
        "replica kill drill: tickets replica a held {} of {RESERVATIONS} order.created; replica b applied the \
         first {} and all {} after the kill; orders replica a held {} ticket.updated; replica b applied the \
         first {} and all {} after the kill",
        tickets_held,
        shown(tickets_took.first),
        shown(tickets_took.all),
        orders_held,
        shown(orders_took.first),
        shown(orders_took.all),
    );
    for (service, took) in [("tickets", &tickets_took), ("orders", &orders_took)] {
        let first = took.first.expect("replica b took over");
        let all = took.all.expect("replica b applied every held event once");
        assert!(first < TAKE_OVER, "{service} took over after {first:?}");
        assert!(all < ALL_APPLIED, "{service} applied all after {all:?}");
    }
    assert_eq!(
        count(
            &tickets_db.pool,
            "SELECT count(*) FROM tickets WHERE version > 1"
        )
        .await,
        0,
        "nothing applied twice"
    );
}
