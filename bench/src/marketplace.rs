//! The part of the marketplace the listing benchmarks need: the tickets
//! service and the orders service (whose tickets replica follows
//! `ticket.created`), each built by its own `startup::build` and served on a
//! free local port, on fresh databases and a JetStream namespace no other run
//! uses, exactly as the services' API tests start them.

use std::time::Duration;

use anyhow::Context as _;
pub use common::config::DEFAULT_LISTENER_BATCH;
use common::lifecycle::{Lifecycle, Service};
use common::testing::{self, TestDatabase, TestServer};
use futures::StreamExt as _;

/// How long an order holds its ticket in the benchmarks' orders service.
const ORDER_EXPIRATION: Duration = Duration::from_secs(900);

/// The tickets and orders services of one benchmark run.
pub struct Marketplace {
    /// The JetStream namespace of this run.
    pub prefix: String,
    pub tickets: TestServer,
    pub orders: TestServer,
    pub tickets_db: TestDatabase,
    pub orders_db: TestDatabase,
}

impl Marketplace {
    /// Creates both databases and a namespace, and starts both services
    /// (each migrates its database, runs its outbox relay and listeners).
    pub async fn start() -> anyhow::Result<Marketplace> {
        Self::with_listener_batch(DEFAULT_LISTENER_BATCH).await
    }

    /// [`Marketplace::start`], with the orders service's batching listeners
    /// taking at most `listener_batch` events at once (`LISTENER_BATCH`).
    pub async fn with_listener_batch(listener_batch: usize) -> anyhow::Result<Marketplace> {
        let prefix = testing::unique_prefix();
        let tickets_db = TestDatabase::create_empty().await;
        let orders_db = TestDatabase::create_empty().await;
        let tickets = start_tickets(&prefix, &tickets_db).await?;
        let orders = start_orders(&prefix, &orders_db, listener_batch).await?;
        Ok(Marketplace {
            prefix,
            tickets,
            orders,
            tickets_db,
            orders_db,
        })
    }

    /// Shuts both services down and releases the run's connections and
    /// streams (see [`clean_up`]).
    pub async fn stop(self) -> anyhow::Result<()> {
        clean_up(
            &self.prefix,
            &[&self.tickets, &self.orders],
            &[&self.tickets_db, &self.orders_db],
        )
        .await
    }
}

/// Starts the tickets service on `db` in the namespace `prefix`.
pub async fn start_tickets(prefix: &str, db: &TestDatabase) -> anyhow::Result<TestServer> {
    let lifecycle = Lifecycle::new();
    let service = tickets::startup::build(
        &tickets::config::Settings {
            common: testing::common_settings(prefix),
            database_url: db.url.clone(),
        },
        &lifecycle,
    )
    .await?;
    Ok(TestServer::start(service.into_app(), lifecycle).await)
}

/// Starts an orders service on `db` in the namespace `prefix`.
pub async fn start_orders(
    prefix: &str,
    db: &TestDatabase,
    listener_batch: usize,
) -> anyhow::Result<TestServer> {
    let lifecycle = Lifecycle::new();
    let service = build_orders(prefix, &db.url, listener_batch, &lifecycle).await?;
    Ok(TestServer::start(service.into_app(), lifecycle).await)
}

/// Shuts `servers` down (bounded drain), closes the pools of `databases`
/// and deletes the streams of the namespace `prefix`, so that repeated runs
/// do not pile up on the shared servers.
pub async fn clean_up(
    prefix: &str,
    servers: &[&TestServer],
    databases: &[&TestDatabase],
) -> anyhow::Result<()> {
    for server in servers {
        server.lifecycle.shutdown.cancel();
        server.lifecycle.tasks.close();
    }
    for server in servers {
        // A drain that overruns only delays the clean-up below, which ends
        // any connection still open.
        let _ = tokio::time::timeout(Duration::from_secs(10), server.lifecycle.tasks.wait()).await;
    }
    // The databases stay (named `bt_test_…`, dropped by `scripts/dev test`):
    // `DROP DATABASE` waits for a checkpoint, tens of seconds on a busy
    // server. Their connections are released now, as the server's are few.
    for db in databases {
        db.pool.close().await;
    }
    delete_streams(prefix).await
}

/// Builds an orders service on `database_url` in the namespace `prefix`, its
/// background tasks spawned on `lifecycle` (and on the runtime this runs in).
pub async fn build_orders(
    prefix: &str,
    database_url: &str,
    listener_batch: usize,
    lifecycle: &Lifecycle,
) -> anyhow::Result<Service> {
    let mut common = testing::common_settings(prefix);
    common.nats.listener_batch = listener_batch;
    orders::startup::build(
        &orders::config::Settings {
            common,
            database_url: database_url.to_string(),
            order_expiration: ORDER_EXPIRATION,
            sweep: orders::config::SweepSettings::default(),
        },
        lifecycle,
    )
    .await
}

/// Deletes every stream of the namespace `prefix`.
pub async fn delete_streams(prefix: &str) -> anyhow::Result<()> {
    let client = async_nats::connect(testing::nats_url())
        .await
        .context("connecting to NATS")?;
    let js = async_nats::jetstream::new(client);
    let own = format!("{prefix}_");
    let names: Vec<String> = js
        .stream_names()
        .filter_map(|n| async move { n.ok() })
        .filter(|n| std::future::ready(n.starts_with(&own)))
        .collect()
        .await;
    for name in names {
        js.delete_stream(&name)
            .await
            .with_context(|| format!("deleting stream {name}"))?;
    }
    Ok(())
}
