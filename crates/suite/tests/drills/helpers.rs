//! Replicas of the tickets and orders services for the drills, each on a
//! Tokio runtime of its own so that a drill can kill one outright, and the
//! requests and queries the drills share.

use std::time::Duration;

use common::lifecycle::{Lifecycle, Service};
use common::testing::{self, TestServer};
use futures::StreamExt as _;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

/// A replica of a service, served on a free port from a runtime of its own.
pub(crate) struct Replica {
    /// `http://127.0.0.1:<port>`.
    pub(crate) address: String,
    runtime: Option<tokio::runtime::Runtime>,
    _server: Option<TestServer>,
}

impl Replica {
    /// Builds the service with `build` on a new runtime and serves it.
    pub(crate) async fn start<F, Fut>(build: F) -> Replica
    where
        F: FnOnce(Lifecycle) -> Fut + Send + 'static,
        Fut: Future<Output = anyhow::Result<Service>> + Send + 'static,
    {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let server = runtime
            .spawn(async move {
                let lifecycle = Lifecycle::new();
                let service = build(lifecycle.clone()).await.expect("the service starts");
                TestServer::start(service.into_app(), lifecycle).await
            })
            .await
            .expect("started");
        Replica {
            address: server.address.clone(),
            runtime: Some(runtime),
            _server: Some(server),
        }
    }

    /// Kills the replica as a crash would: every task stops where it is,
    /// nothing is acknowledged or handed back, its connections close.
    pub(crate) fn kill(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A tickets replica on `database_url`, in the namespace of `common`.
pub(crate) async fn tickets(
    common: &common::config::CommonSettings,
    database_url: &str,
) -> Replica {
    let settings = tickets::config::Settings {
        common: common.clone(),
        database_url: database_url.to_string(),
    };
    Replica::start(
        move |lifecycle| async move { tickets::startup::build(&settings, &lifecycle).await },
    )
    .await
}

/// An orders replica on `database_url`, in the namespace of `common`, with
/// 15-minute reservations.
pub(crate) async fn orders(common: &common::config::CommonSettings, database_url: &str) -> Replica {
    let settings = orders::config::Settings {
        common: common.clone(),
        database_url: database_url.to_string(),
        order_expiration: Duration::from_secs(900),
        sweep: orders::config::SweepSettings::default(),
    };
    Replica::start(
        move |lifecycle| async move { orders::startup::build(&settings, &lifecycle).await },
    )
    .await
}

/// Waits until `/readyz` of every replica answers 200.
pub(crate) async fn all_ready(client: &reqwest::Client, replicas: &[&Replica]) {
    for replica in replicas {
        let ready = testing::eventually(Duration::from_secs(15), || async {
            client
                .get(format!("{}/readyz", replica.address))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        })
        .await;
        assert!(ready, "{} is ready", replica.address);
    }
}

/// Lists `n` tickets through the tickets replica at `address`, 32 at a time.
pub(crate) async fn list_tickets(client: &reqwest::Client, address: &str, n: usize) -> Vec<Uuid> {
    let cookie = testing::session_cookie(&testing::new_user());
    futures::stream::iter(0..n)
        .map(|i| {
            let request = client
                .post(format!("{address}/api/tickets"))
                .header("Cookie", &cookie)
                .json(&json!({"title": format!("Drill {i}"), "price": 20}));
            async move {
                let response = request.send().await.expect("send");
                assert_eq!(response.status(), reqwest::StatusCode::CREATED);
                let body: Value = response.json().await.expect("json");
                Uuid::parse_str(body["id"].as_str().expect("id")).expect("uuid")
            }
        })
        .buffer_unordered(32)
        .collect()
        .await
}

/// Reserves `ticket` through the orders replica at `address` as a new
/// buyer; returns the order's id. A 503 (the database was out of reach,
/// nothing was written) is retried after a moment, as a client following
/// `Retry-After` would; any other answer but 201 fails the test.
pub(crate) async fn reserve(client: &reqwest::Client, address: &str, ticket: Uuid) -> Uuid {
    let cookie = testing::session_cookie(&testing::new_user());
    let mut attempts = 0;
    loop {
        attempts += 1;
        let response = client
            .post(format!("{address}/api/orders"))
            .header("Cookie", &cookie)
            .json(&json!({"ticketId": ticket}))
            .send()
            .await
            .expect("send");
        let status = response.status();
        let body: Value = response.json().await.expect("json");
        if status == reqwest::StatusCode::SERVICE_UNAVAILABLE && attempts < 5 {
            eprintln!("reserving {ticket}: 503 {body}; retrying");
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        }
        assert_eq!(
            status,
            reqwest::StatusCode::CREATED,
            "reserving {ticket}: {body}"
        );
        return Uuid::parse_str(body["id"].as_str().expect("id")).expect("uuid");
    }
}

/// The single number `sql` (a `SELECT count(*) …`) answers.
pub(crate) async fn count(pool: &PgPool, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(pool)
        .await
        .expect("count")
}

/// Waits (at most `within`) until `sql` counts `n`; returns whether it did.
pub(crate) async fn until_count(
    pool: &PgPool,
    sql: &'static str,
    n: usize,
    within: Duration,
) -> bool {
    testing::eventually(within, || async { count(pool, sql).await == n as i64 }).await
}
