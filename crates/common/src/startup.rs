//! The start-up every service shares, in one place: connect to NATS, open
//! and migrate the service's own database, start its outbox relay, register
//! its listeners, and collect the readiness checks. A service's
//! `startup::build` is then only what is its own: its state, its routes and
//! any extra background task.
//!
//! ```ignore
//! let mut backbone = Backbone::connect(SERVICE, &settings.common.nats, lifecycle).await?;
//! let pool = backbone.database(&settings.database_url, &crate::MIGRATOR).await?;
//! backbone.listen(TicketCreatedListener::new(pool.clone()));
//! Ok(backbone.into_service(crate::routes::router().with_state(state)))
//! ```

use anyhow::Context as _;
use axum::Router;
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use tokio_util::sync::CancellationToken;

use crate::bus::Bus;
use crate::config::NatsSettings;
use crate::deny::BanListener;
use crate::events::{UserBanned, UserUnbanned};
use crate::health::Readiness;
use crate::lifecycle::{Lifecycle, Service};
use crate::listener::{self, Listener};
use crate::outbox::{Relay, RelayOptions};
use crate::session::Sessions;

/// A service being assembled: its name, lifecycle, bus and readiness checks.
pub struct Backbone {
    service: &'static str,
    lifecycle: Lifecycle,
    nats: NatsSettings,
    bus: Bus,
    readiness: Readiness,
}

impl Backbone {
    /// Connects to NATS as `service` (in the background when the broker is
    /// not reachable yet, so the service starts anyway).
    pub async fn connect(
        service: &'static str,
        nats: &NatsSettings,
        lifecycle: &Lifecycle,
    ) -> anyhow::Result<Backbone> {
        // Before anything can count: events handled before the recorder
        // exists would be lost.
        crate::metrics::install();
        Ok(Backbone {
            service,
            lifecycle: lifecycle.clone(),
            nats: nats.clone(),
            bus: Bus::connect(nats, service).await?,
            readiness: Readiness::new(),
        })
    }

    /// The service's name, as its consumers and inbox rows carry it.
    pub fn service(&self) -> &'static str {
        self.service
    }

    /// The bus, for what the service publishes or consumes by itself.
    pub fn bus(&self) -> &Bus {
        &self.bus
    }

    /// The lifecycle the service's background tasks run on.
    pub fn lifecycle(&self) -> &Lifecycle {
        &self.lifecycle
    }

    /// Opens the service's own database at `url` (lazily), applies the
    /// shared and the service's `migrations`, starts the samplers of its
    /// outbox backlog and pool (metrics), the cleanup of its idempotency
    /// keys and the outbox relay, and adds the
    /// `<service>-database` readiness check. Fails when the
    /// database cannot be migrated.
    pub async fn database(&mut self, url: &str, migrations: &Migrator) -> anyhow::Result<PgPool> {
        let pool = crate::db::pool(url)?;
        crate::db::migrate(&pool, migrations)
            .await
            .with_context(|| format!("migrating the {} database", self.service))?;
        crate::metrics::spawn_samplers(&self.lifecycle, self.service, pool.clone());
        crate::idempotency::spawn_cleanup(&self.lifecycle, pool.clone());
        self.spawn_relay(url);
        self.readiness = std::mem::take(&mut self.readiness)
            .postgres(format!("{}-database", self.service), pool.clone());
        Ok(pool)
    }

    /// Runs the outbox relay of the database at `url` on a thread of its own,
    /// with a runtime, one database connection and a NATS connection of its
    /// own. A flood of requests fills the service's task queue; on the
    /// shared runtime the relay waited behind it at every step of a pass, and
    /// the events of a flash sale reached the other services seconds late
    /// (1,250 listings/s on a 2-core machine: 2,768 rows pending, lag p99
    /// 2.2 s). On its own thread the operating system schedules it like a
    /// process of its own.
    ///
    /// The thread lives as long as the task that spawned it: if the
    /// service's runtime goes away without a shutdown (a replica killed in a
    /// drill), the relay is dropped where it stands too.
    fn spawn_relay(&self, url: &str) {
        let (url, nats, service) = (url.to_string(), self.nats.clone(), self.service);
        self.lifecycle.spawn(move |shutdown| async move {
            let orphaned = CancellationToken::new();
            let _parent = orphaned.clone().drop_guard();
            let (done, ended) = tokio::sync::oneshot::channel();
            let thread = std::thread::Builder::new()
                .name(format!("{service}-relay"))
                .spawn(move || {
                    let _ = done.send(run_relay(&url, &nats, service, shutdown, orphaned));
                });
            let ended = match thread {
                Ok(_) => ended
                    .await
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("the relay thread panicked"))),
                Err(e) => Err(anyhow::Error::new(e).context("starting the relay thread")),
            };
            if let Err(e) = ended {
                tracing::error!(error = format!("{e:#}"), "the outbox relay stopped");
            }
        });
    }

    /// Runs `listener` as this service's durable consumer of its subject.
    pub fn listen<L: Listener>(&self, listener: L) {
        listener::spawn(&self.lifecycle, &self.bus, self.service, listener);
    }

    /// Feeds `sessions`' deny cache from `user.banned` and `user.unbanned`
    /// (this service's durable consumers of them), so that bans reach the
    /// cache every replica of every service reads. Nothing without a cache.
    pub fn follow_bans(&self, sessions: &Sessions) {
        if let Some(cache) = sessions.deny_cache() {
            self.listen(BanListener::<UserBanned>::new(cache.clone()));
            self.listen(BanListener::<UserUnbanned>::new(cache.clone()));
        }
    }

    /// Adds a readiness check of the service's own (e.g. its Redis).
    pub fn check<F, Fut>(&mut self, name: impl Into<String>, check: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        self.readiness = std::mem::take(&mut self.readiness).check(name, check);
    }

    /// The finished service: `api` (the service's routes, with their state)
    /// and the readiness checks, NATS's last.
    pub fn into_service(self, api: Router) -> Service {
        Service {
            api,
            readiness: self.readiness.nats("nats", self.bus.client().clone()),
        }
    }
}

/// The body of the relay's thread: runs the relay of the database at `url`
/// until `shutdown`, on a runtime and connections of its own; dropped at
/// once when `orphaned` (the service's runtime is gone).
fn run_relay(
    url: &str,
    nats: &NatsSettings,
    service: &'static str,
    shutdown: CancellationToken,
    orphaned: CancellationToken,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building the relay's runtime")?;
    runtime.block_on(async {
        let relay = async {
            let pool = crate::outbox::relay_pool(url)?;
            let bus = Bus::connect(nats, service).await?;
            Relay::new(pool, bus, RelayOptions::default())
                .run(shutdown)
                .await;
            Ok(())
        };
        tokio::select! {
            ran = relay => ran,
            () = orphaned.cancelled() => Ok(()),
        }
    })
}
