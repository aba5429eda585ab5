//! Drill: `kill -9` of NATS in the middle of 1,000 reservations, and a
//! restart two seconds later. Reservations keep being taken while the
//! broker is away (the outbox holds their events); once it is back every
//! reservation reaches its ticket, none is lost and none is applied twice.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use common::events::{OrderCreated, TicketUpdated};
use common::testing::{self, NatsServer, TestDatabase};
use futures::StreamExt as _;
use uuid::Uuid;

use crate::helpers::{self, all_ready, count, list_tickets, reserve, until_count};

const RESERVATIONS: usize = 1000;
/// How long the broker stays dead.
const OUTAGE: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_reservations_survive_a_kill_9_of_nats_none_lost_none_applied_twice() {
    let mut nats = NatsServer::start();
    let prefix = testing::unique_prefix();
    let mut common = testing::common_settings(&prefix);
    common.nats.url = nats.url();
    let tickets_db = TestDatabase::create_empty().await;
    let orders_db = TestDatabase::create_empty().await;
    let tickets = helpers::tickets(&common, &tickets_db.url).await;
    let orders = helpers::orders(&common, &orders_db.url).await;
    let client = reqwest::Client::new();
    all_ready(&client, &[&tickets, &orders]).await;

    let listed = list_tickets(&client, &tickets.address, RESERVATIONS).await;
    assert!(
        until_count(
            &orders_db.pool,
            "SELECT count(*) FROM tickets",
            RESERVATIONS,
            Duration::from_secs(60)
        )
        .await,
        "the orders service's replica has every ticket"
    );

    let started = Instant::now();
    let reserving = {
        let (client, address) = (client.clone(), orders.address.clone());
        tokio::spawn(async move {
            futures::stream::iter(listed)
                .map(|ticket| {
                    let (client, address) = (client.clone(), address.clone());
                    async move { (ticket, reserve(&client, &address, ticket).await) }
                })
                .buffer_unordered(16)
                .collect::<HashMap<Uuid, Uuid>>()
                .await
        })
    };
    let a_third = testing::eventually(Duration::from_secs(60), || async {
        count(&orders_db.pool, "SELECT count(*) FROM orders").await >= (RESERVATIONS / 3) as i64
    })
    .await;
    assert!(a_third, "a third of the reservations taken");
    nats.stop();
    let killed_at = count(&orders_db.pool, "SELECT count(*) FROM orders").await;
    tokio::time::sleep(OUTAGE).await;
    let during = count(&orders_db.pool, "SELECT count(*) FROM orders").await - killed_at;
    nats.resume();
    let resumed = Instant::now();

    let reservations = reserving.await.expect("every reservation answered 201");
    let requests_done = started.elapsed();
    let reached = until_count(
        &tickets_db.pool,
        "SELECT count(*) FROM tickets WHERE order_id IS NOT NULL",
        RESERVATIONS,
        Duration::from_secs(60),
    )
    .await;
    let recovered_in = resumed.elapsed();
    let replicated = until_count(
        &orders_db.pool,
        "SELECT count(*) FROM tickets WHERE version = 1",
        RESERVATIONS,
        Duration::from_secs(60),
    )
    .await;
    let replicated_in = resumed.elapsed();
    eprintln!(
        "NATS kill drill: {RESERVATIONS} reservations in {requests_done:?}; NATS killed after {killed_at}, \
         down {OUTAGE:?} ({during} reservations taken meanwhile); every reservation on its ticket \
         {recovered_in:?} after NATS came back, orders' replica settled after {replicated_in:?}"
    );
    assert!(reached, "every reservation reached the tickets service");
    assert!(
        replicated,
        "every ticket.updated reached the orders service"
    );

    // 0 lost, 0 twice: each ticket holds exactly its own order, once.
    let held: HashMap<Uuid, (Option<Uuid>, i64)> =
        sqlx::query_as::<_, (Uuid, Option<Uuid>, i64)>("SELECT id, order_id, version FROM tickets")
            .fetch_all(&tickets_db.pool)
            .await
            .expect("tickets")
            .into_iter()
            .map(|(id, order, version)| (id, (order, version)))
            .collect();
    assert_eq!(reservations.len(), RESERVATIONS);
    for (ticket, order) in &reservations {
        assert_eq!(
            held.get(ticket),
            Some(&(Some(*order), 1)),
            "ticket {ticket}"
        );
    }
    assert_eq!(
        count(&orders_db.pool, "SELECT count(*) FROM orders").await,
        RESERVATIONS as i64
    );
    let bus = common::bus::Bus::connect(&common.nats, "drills")
        .await
        .expect("NATS");
    assert!(
        testing::outbox_settled(&orders_db.pool, Duration::from_secs(30)).await,
        "the orders outbox drained"
    );
    assert!(
        testing::outbox_settled(&tickets_db.pool, Duration::from_secs(30)).await,
        "the tickets outbox drained"
    );
    let created = testing::published::<OrderCreated>(&bus).await;
    let distinct: HashSet<Uuid> = created.iter().map(|o| o.id).collect();
    assert_eq!(created.len(), RESERVATIONS, "one order.created per order");
    assert_eq!(distinct.len(), RESERVATIONS);
    let updated = testing::published::<TicketUpdated>(&bus).await;
    let distinct: HashSet<Uuid> = updated.iter().map(|t| t.0.id).collect();
    assert_eq!(
        updated.len(),
        RESERVATIONS,
        "one ticket.updated per reservation"
    );
    assert_eq!(distinct.len(), RESERVATIONS);
}
