//! The replication scenario the original project documented: several running
//! instances of tickets and orders share their durable consumers; tickets are
//! created and updated twice through different instances; once the events
//! settle, every ticket in the orders service's replica must be at its last
//! price and at the same version as in tickets. Without versioned replicas
//! some ended up stuck at an intermediate price.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::lifecycle::Lifecycle;
use common::testing::{self, TestDatabase, TestServer};
use futures::StreamExt as _;
use serde_json::{Value, json};
use uuid::Uuid;

const INSTANCES: usize = 4;
const TICKETS: usize = 200;

struct Deployment {
    tickets: Vec<TestServer>,
    orders: Vec<TestServer>,
    tickets_db: TestDatabase,
    orders_db: TestDatabase,
}

async fn deploy() -> Deployment {
    let prefix = testing::unique_prefix();
    let tickets_db = TestDatabase::create_empty().await;
    let orders_db = TestDatabase::create_empty().await;
    let mut tickets = Vec::new();
    let mut orders = Vec::new();
    for _ in 0..INSTANCES {
        let settings = tickets::config::Settings {
            common: testing::common_settings(&prefix),
            database_url: tickets_db.url.clone(),
        };
        let lifecycle = Lifecycle::new();
        let service = tickets::startup::build(&settings, &lifecycle)
            .await
            .expect("tickets starts");
        tickets.push(TestServer::start(service.into_app(), lifecycle).await);

        let settings = orders::config::Settings {
            common: testing::common_settings(&prefix),
            database_url: orders_db.url.clone(),
            order_expiration: Duration::from_secs(900),
            sweep: orders::config::SweepSettings::default(),
        };
        let lifecycle = Lifecycle::new();
        let service = orders::startup::build(&settings, &lifecycle)
            .await
            .expect("orders starts");
        orders.push(TestServer::start(service.into_app(), lifecycle).await);
    }
    Deployment {
        tickets,
        orders,
        tickets_db,
        orders_db,
    }
}

async fn send(client: &reqwest::Client, request: reqwest::RequestBuilder) -> Value {
    let response = client
        .execute(request.build().expect("request"))
        .await
        .expect("send");
    assert!(response.status().is_success(), "{}", response.status());
    response.json().await.expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_replica_ticket_ends_at_its_last_price_and_version_across_four_instances_of_each_service()
 {
    let deployment = deploy().await;
    let cookie = testing::session_cookie(&testing::new_user());
    let client = reqwest::Client::new();
    let instance = |i: usize| deployment.tickets[i % INSTANCES].address.clone();
    for server in deployment.tickets.iter().chain(&deployment.orders) {
        let ready = testing::eventually(Duration::from_secs(10), || async {
            client
                .get(format!("{}/readyz", server.address))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        })
        .await;
        assert!(ready, "{} is ready", server.address);
    }

    let started = Instant::now();
    let created: Vec<Uuid> = futures::stream::iter(0..TICKETS)
        .map(|i| {
            let (client, cookie) = (client.clone(), cookie.clone());
            let (a, b, c) = (instance(i), instance(i + 1), instance(i + 2));
            async move {
                let ticket = send(
                    &client,
                    client
                        .post(format!("{a}/api/tickets"))
                        .header("Cookie", &cookie)
                        .json(&json!({"title": format!("Ticket {i}"), "price": 5})),
                )
                .await;
                let id = ticket["id"].as_str().expect("id").to_string();
                for (at, price) in [(b, 10), (c, 15)] {
                    send(
                        &client,
                        client
                            .put(format!("{at}/api/tickets/{id}"))
                            .header("Cookie", &cookie)
                            .json(&json!({"title": format!("Ticket {i}"), "price": price})),
                    )
                    .await;
                }
                Uuid::parse_str(&id).expect("uuid")
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let requests_done = started.elapsed();

    let settled = testing::eventually(Duration::from_secs(90), || async {
        let done: i64 =
            sqlx::query_scalar("SELECT count(*) FROM tickets WHERE price = 1500 AND version = 2")
                .fetch_one(&deployment.orders_db.pool)
                .await
                .expect("count");
        done == TICKETS as i64
    })
    .await;
    let settled_after = started.elapsed();

    let source: HashMap<Uuid, (i64, i64)> =
        sqlx::query_as::<_, (Uuid, i64, i64)>("SELECT id, price, version FROM tickets")
            .fetch_all(&deployment.tickets_db.pool)
            .await
            .expect("tickets")
            .into_iter()
            .map(|(id, price, version)| (id, (price, version)))
            .collect();
    let replica: HashMap<Uuid, (i64, i64)> =
        sqlx::query_as::<_, (Uuid, i64, i64)>("SELECT id, price, version FROM tickets")
            .fetch_all(&deployment.orders_db.pool)
            .await
            .expect("replica")
            .into_iter()
            .map(|(id, price, version)| (id, (price, version)))
            .collect();
    let matching = created
        .iter()
        .filter(|id| replica.get(id) == source.get(id))
        .count();
    let at_fifteen = replica.values().filter(|(price, _)| *price == 1500).count();
    println!(
        "replication: {TICKETS} tickets × 3 writes over {INSTANCES}+{INSTANCES} instances; requests done in {requests_done:?}, \
         replica settled in {settled_after:?}; {at_fifteen}/{TICKETS} at 15, {matching}/{TICKETS} at the source's version"
    );
    assert!(settled, "the replica settled");
    assert_eq!(source.len(), TICKETS);
    assert!(
        source.values().all(|v| *v == (1500, 2)),
        "the source is at 15, version 2"
    );
    assert_eq!(at_fifteen, TICKETS, "every replica ticket at 15");
    assert_eq!(
        matching, TICKETS,
        "every replica ticket at the source's version"
    );
}
