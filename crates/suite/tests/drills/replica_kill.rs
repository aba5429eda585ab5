//! Drill: two replicas each of tickets and orders; one replica of each is
//! killed while it is in the middle of handling events (its database hangs
//! behind a fault proxy, so its handlers are stuck mid-transaction). The
//! other replica must apply what the dead one held within 5 s: the ack wait
//! is 4 s, and the dead replica's "in progress" signals stop with it.

use std::time::{Duration, Instant};

use common::testing::{self, Fault, FaultProxy, TestDatabase};
use futures::StreamExt as _;

use crate::helpers::{self, all_ready, count, list_tickets, reserve, until_count};

const RESERVATIONS: usize = 60;
/// What the drill asks of a take-over.
const TAKE_OVER: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_a_killed_replica_was_handling_are_applied_by_the_other_replica_within_five_seconds()
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
    // Longer than an ack wait: the server has been told the stuck events
    // are in progress and leaves them with replica "a".
    let stuck = Duration::from_secs(5);
    tokio::time::sleep(stuck).await;
    let reserved = count(
        &tickets_db.pool,
        "SELECT count(*) FROM tickets WHERE order_id IS NOT NULL",
    )
    .await;
    assert!(
        reserved < RESERVATIONS as i64,
        "tickets replica a holds some order.created ({reserved}/{RESERVATIONS} applied)"
    );

    tickets_a.kill();
    // A dead process's connections close: the database ends its
    // transactions and frees their locks.
    tickets_proxy.set(Fault::Down);
    let killed = Instant::now();
    let taken_over = until_count(
        &tickets_db.pool,
        "SELECT count(*) FROM tickets WHERE order_id IS NOT NULL AND version = 1",
        RESERVATIONS,
        Duration::from_secs(20),
    )
    .await;
    let tickets_took = killed.elapsed();

    // Every ticket.updated is out; give orders replica "a" its share.
    assert!(testing::outbox_settled(&tickets_db.pool, Duration::from_secs(20)).await);
    tokio::time::sleep(stuck).await;
    let replicated = count(
        &orders_db.pool,
        "SELECT count(*) FROM tickets WHERE version = 1",
    )
    .await;
    assert!(
        replicated < RESERVATIONS as i64,
        "orders replica a holds some ticket.updated ({replicated}/{RESERVATIONS} applied)"
    );
    orders_a.kill();
    orders_proxy.set(Fault::Down);
    let killed = Instant::now();
    let orders_taken_over = until_count(
        &orders_db.pool,
        "SELECT count(*) FROM tickets WHERE version = 1",
        RESERVATIONS,
        Duration::from_secs(20),
    )
    .await;
    let orders_took = killed.elapsed();

    eprintln!(
        "replica kill drill: tickets replica a held {} of {RESERVATIONS} order.created, replica b applied them \
         {tickets_took:?} after the kill; orders replica a held {} ticket.updated, replica b applied them \
         {orders_took:?} after the kill",
        RESERVATIONS as i64 - reserved,
        RESERVATIONS as i64 - replicated,
    );
    assert!(
        taken_over,
        "tickets replica b applied every order.created once"
    );
    assert!(
        orders_taken_over,
        "orders replica b applied every ticket.updated once"
    );
    assert!(
        tickets_took < TAKE_OVER,
        "tickets took over in {tickets_took:?}"
    );
    assert!(
        orders_took < TAKE_OVER,
        "orders took over in {orders_took:?}"
    );
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
