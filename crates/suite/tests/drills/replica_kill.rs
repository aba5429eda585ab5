//! Drill: two replicas each of tickets and orders; one replica of each is
//! killed while it is in the middle of handling events (its database hangs
//! behind a fault proxy, so its handlers are stuck mid-transaction). The
//! other replica must take over within 5 s (the ack wait is 4 s, and the
//! dead replica's "in progress" signals stop with it) and have applied
//! everything the dead one held, once, within 10 s. The hung orders replica
//! may have been in the middle of a relay pass, holding the relay lock, when
//! its database hung: every `order.created` must still go out, through the
//! other replica's relay.

use std::time::{Duration, Instant};

use common::bus::Bus;
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
/// last of the events the dead one held, and the consumer's state as the
/// server saw it at the kill and at the end (for a failure's message).
struct TakeOver {
    first: Option<Duration>,
    all: Option<Duration>,
    at_kill: String,
    at_end: String,
}

/// What the server says of `service`'s consumer of `subject`: pull
/// requests waiting, deliveries unacknowledged, redelivered, not yet
/// delivered.
async fn consumer_state(bus: &Bus, service: &str, subject: &str) -> String {
    match testing::consumer_info(bus, service, subject).await {
        Some(info) => format!(
            "{} pull requests waiting, {} unacknowledged, {} redelivered, {} undelivered",
            info.num_waiting, info.num_ack_pending, info.num_redelivered, info.num_pending
        ),
        None => "unknown".to_string(),
    }
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
    (bus, service, subject): (&Bus, &str, &str),
) -> (i64, TakeOver) {
    tokio::time::sleep(Duration::from_secs(5)).await;
    let applied = settled(pool, sql).await;
    assert!(
        applied < RESERVATIONS as i64,
        "the replica holds some events ({applied}/{RESERVATIONS} applied)"
    );
    let at_kill = consumer_state(bus, service, subject).await;
    replica.kill();
    // The database ends the dead replica's transactions and frees their locks.
    proxy.set(Fault::Down);
    let (first, all) = take_over(pool, sql, applied).await;
    let at_end = consumer_state(bus, service, subject).await;
    (
        RESERVATIONS as i64 - applied,
        TakeOver {
            first,
            all,
            at_kill,
            at_end,
        },
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
/// reaches [`RESERVATIONS`], or 20 s pass: when the first and the last
/// held event were applied.
async fn take_over(
    pool: &sqlx::PgPool,
    sql: &'static str,
    before: i64,
) -> (Option<Duration>, Option<Duration>) {
    let killed = Instant::now();
    let mut first = None;
    while killed.elapsed() < Duration::from_secs(20) {
        let applied = count(pool, sql).await;
        if applied > before && first.is_none() {
            first = Some(killed.elapsed());
        }
        if applied == RESERVATIONS as i64 {
            return (first, Some(killed.elapsed()));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (first, None)
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
    let bus = Bus::connect(&common.nats, "replica-kill-drill")
        .await
        .expect("NATS");
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
    // Every order.created is out. Orders replica "a" may have hung in the
    // middle of a relay pass, holding the relay lock until PostgreSQL ends
    // its session (after `RELAY_IDLE_IN_TRANSACTION`).
    assert!(
        testing::outbox_settled(&orders_db.pool, Duration::from_secs(30)).await,
        "every order.created is published"
    );
    let (tickets_held, tickets_took) = kill_while_stuck(
        &mut tickets_a,
        &tickets_proxy,
        &tickets_db.pool,
        "SELECT count(*) FROM tickets WHERE order_id IS NOT NULL AND version = 1",
        (&bus, "tickets", "order.created"),
    )
    .await;
    // Every ticket.updated is out; orders replica "a" holds its share.
    assert!(testing::outbox_settled(&tickets_db.pool, Duration::from_secs(20)).await);
    let (orders_held, orders_took) = kill_while_stuck(
        &mut orders_a,
        &orders_proxy,
        &orders_db.pool,
        "SELECT count(*) FROM tickets WHERE version = 1",
        (&bus, "orders", "ticket.updated"),
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
        let consumer = format!(
            "{service}'s consumer at the kill: {}; at the end: {}",
            took.at_kill, took.at_end
        );
        let first = took
            .first
            .unwrap_or_else(|| panic!("replica b took over; {consumer}"));
        let all = took
            .all
            .unwrap_or_else(|| panic!("replica b applied every held event once; {consumer}"));
        assert!(
            first < TAKE_OVER,
            "{service} took over after {first:?}; {consumer}"
        );
        assert!(
            all < ALL_APPLIED,
            "{service} applied all after {all:?}; {consumer}"
        );
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
