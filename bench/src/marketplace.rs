//! The part of the marketplace the listing benchmarks need: the tickets
//! service and the orders service (whose tickets replica follows
//! `ticket.created`), each built by its own `startup::build` and served on a
//! free local port, on fresh databases and a JetStream namespace no other run
//! uses, exactly as the services' API tests start them.
//!
//! Each service runs on a [`Host`]: a Tokio runtime of its own, with its own
//! worker threads, as a separate process has. The benchmark's load runs on
//! the benchmark's runtime. So the services and the load compete for the
//! machine's cores through the operating system's scheduler, as deployed
//! processes do, and not in one task queue, where a flood of requests to one
//! service would delay another service's listeners behind it.

use std::time::Duration;

use anyhow::Context as _;
pub use common::config::DEFAULT_LISTENER_BATCH;
use common::lifecycle::{Lifecycle, Service};
use common::testing::{self, TestDatabase, TestServer};
use futures::StreamExt as _;

/// How long an order holds its ticket in the benchmarks' orders service.
const ORDER_EXPIRATION: Duration = Duration::from_secs(900);

/// A Tokio runtime of its own for one service, with as many worker threads
/// as the machine has cores (Tokio's default, as in a service's process).
/// Dropping it ends the service's tasks and connections where they stand,
/// like a process killed with SIGKILL.
pub struct Host(Option<tokio::runtime::Runtime>);

impl Host {
    /// A runtime whose threads are named `name`.
    pub fn new(name: &str) -> anyhow::Result<Host> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .thread_name(name)
            .enable_all()
            .build()
            .with_context(|| format!("building the runtime of {name}"))?;
        Ok(Host(Some(runtime)))
    }

    /// Runs `future` on this host and waits for its result.
    pub async fn run<T: Send + 'static>(
        &self,
        future: impl Future<Output = T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let runtime = self.0.as_ref().context("the host was killed")?;
        runtime
            .spawn(future)
            .await
            .context("a task on a service's runtime panicked")
    }

    /// Ends every task of the host at once, without a graceful shutdown.
    pub fn kill(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The tickets and orders services of one benchmark run.
pub struct Marketplace {
    /// The JetStream namespace of this run.
    pub prefix: String,
    pub tickets: TestServer,
    pub orders: TestServer,
    pub tickets_db: TestDatabase,
    pub orders_db: TestDatabase,
    /// The services' runtimes, dropped after their shutdown.
    hosts: Vec<Host>,
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
        let tickets_host = Host::new("tickets")?;
        let orders_host = Host::new("orders")?;
        let tickets = start_tickets(&tickets_host, &prefix, &tickets_db).await?;
        let orders = start_orders(&orders_host, &prefix, &orders_db, listener_batch).await?;
        Ok(Marketplace {
            prefix,
            tickets,
            orders,
            tickets_db,
            orders_db,
            hosts: vec![tickets_host, orders_host],
        })
    }

    /// Shuts both services down and releases the run's connections and
    /// streams (see [`clean_up`]).
    pub async fn stop(self) -> anyhow::Result<()> {
        let stopped = clean_up(
            &self.prefix,
            &[&self.tickets, &self.orders],
            &[&self.tickets_db, &self.orders_db],
        )
        .await;
        drop(self.hosts);
        stopped
    }
}

/// Starts the tickets service on `host`, on `db` in the namespace `prefix`.
pub async fn start_tickets(
    host: &Host,
    prefix: &str,
    db: &TestDatabase,
) -> anyhow::Result<TestServer> {
    let settings = tickets::config::Settings {
        common: testing::common_settings(prefix),
        database_url: db.url.clone(),
    };
    host.run(async move {
        let lifecycle = Lifecycle::new();
        let service = tickets::startup::build(&settings, &lifecycle).await?;
        Ok(TestServer::start(service.into_app(), lifecycle).await)
    })
    .await?
}

/// Starts an orders service on `host`, on `db` in the namespace `prefix`.
pub async fn start_orders(
    host: &Host,
    prefix: &str,
    db: &TestDatabase,
    listener_batch: usize,
) -> anyhow::Result<TestServer> {
    let (prefix, url) = (prefix.to_string(), db.url.clone());
    host.run(async move {
        let lifecycle = Lifecycle::new();
        let service = build_orders(&prefix, &url, listener_batch, &lifecycle).await?;
        Ok(TestServer::start(service.into_app(), lifecycle).await)
    })
    .await?
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
