//! A harness per test: its own JetStream namespace and Redis queue, a way to
//! start (and stop) instances of the real service on them, to publish
//! `order.created`, and to read what the service published and stored.

use std::time::Duration;

use apalis::prelude::Status;
use chrono::{DateTime, Utc};
use common::bus::Bus;
use common::events::{
    Event as _, ExpirationComplete, OrderCreated, OrderStatus, OrderTicket, Stream,
};
use common::lifecycle::Lifecycle;
use common::testing::{self, TestServer, eventually};
use expiration::config::Settings;
use expiration::jobs::ExpirationJobs;
use uuid::Uuid;

/// How long a test waits for something asynchronous.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// A Redis URL on which nothing listens.
pub(crate) fn closed_redis_url() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    format!("redis://127.0.0.1:{port}")
}

pub(crate) struct Harness {
    pub(crate) settings: Settings,
    /// A connection to the test's JetStream namespace.
    pub(crate) bus: Bus,
    /// The test's job queue, to look at what the service stored.
    pub(crate) jobs: ExpirationJobs,
}

/// One `expiration.complete` as JetStream stored it.
#[derive(Debug)]
pub(crate) struct Stored {
    pub(crate) order_id: Uuid,
    pub(crate) msg_id: Option<String>,
    pub(crate) stored_at: DateTime<Utc>,
}

impl Harness {
    /// A fresh namespace on the machine's NATS and Redis.
    pub(crate) async fn new() -> Harness {
        Self::on_nats(testing::nats_url()).await
    }

    /// A fresh namespace on the NATS at `nats_url`.
    pub(crate) async fn on_nats(nats_url: String) -> Harness {
        Self::on_servers(nats_url, testing::redis_url()).await
    }

    /// A fresh namespace on the NATS at `nats_url` and the Redis at `redis_url`.
    pub(crate) async fn on_servers(nats_url: String, redis_url: String) -> Harness {
        let prefix = testing::unique_prefix();
        let mut common = testing::common_settings(&prefix);
        common.nats.url = nats_url;
        let settings = Settings {
            common,
            redis_url,
            queue: format!("{prefix}:expiration"),
        };
        // The streams exist before a test publishes or reads, whichever of
        // the test and the service gets to NATS first.
        let bus = Bus::connect(&settings.common.nats, "expiration-tests")
            .await
            .expect("NATS reachable");
        bus.ensure_streams().await.expect("streams");
        let jobs = ExpirationJobs::new(&settings.redis_url, &settings.queue).expect("a Redis URL");
        Harness {
            settings,
            bus,
            jobs,
        }
    }

    /// Starts an instance of the service on the test's namespace.
    pub(crate) async fn start(&self) -> Instance {
        self.start_with(self.settings.clone()).await
    }

    /// Starts an instance of the service whose Redis is `redis_url`.
    pub(crate) async fn start_with_redis(&self, redis_url: String) -> Instance {
        self.start_with(Settings {
            redis_url,
            ..self.settings.clone()
        })
        .await
    }

    async fn start_with(&self, settings: Settings) -> Instance {
        let lifecycle = Lifecycle::new();
        let service = expiration::startup::build(&settings, &lifecycle)
            .await
            .expect("expiration starts");
        Instance {
            server: TestServer::start(service.into_app(), lifecycle).await,
        }
    }

    /// Publishes `order` as `order.created` with a new message id.
    pub(crate) async fn publish_order(&self, order: &OrderCreated) {
        testing::publish(&self.bus, order).await;
    }

    /// Every `expiration.complete` in the stream, in stream order.
    pub(crate) async fn expirations(&self) -> Vec<Stored> {
        let mut stream = self
            .bus
            .jetstream()
            .get_stream(self.bus.name(Stream::Expiration.name()))
            .await
            .expect("stream exists");
        let state = stream.info().await.expect("stream info").state.clone();
        let mut out = Vec::new();
        for seq in state.first_sequence..=state.last_sequence {
            let Ok(m) = stream.get_raw_message(seq).await else {
                continue;
            };
            if self.bus.unprefixed(m.subject.as_str()) != ExpirationComplete::SUBJECT {
                continue;
            }
            let event: ExpirationComplete =
                serde_json::from_slice(&m.payload).expect("a decodable event");
            let nanos = i64::try_from(m.time.unix_timestamp_nanos()).expect("a recent time");
            out.push(Stored {
                order_id: event.order_id,
                msg_id: m.headers.get("Nats-Msg-Id").map(|v| v.as_str().to_string()),
                stored_at: DateTime::from_timestamp_nanos(nanos),
            });
        }
        out
    }

    /// How many messages the expiration stream holds, by its own count.
    pub(crate) async fn stream_messages(&self) -> u64 {
        let mut stream = self
            .bus
            .jetstream()
            .get_stream(self.bus.name(Stream::Expiration.name()))
            .await
            .expect("stream exists");
        stream.info().await.expect("stream info").state.messages
    }

    /// Waits (up to `timeout`) until at least `n` events are stored; returns
    /// them all.
    pub(crate) async fn wait_for_expirations(&self, n: usize, timeout: Duration) -> Vec<Stored> {
        let reached = eventually(timeout, || async { self.expirations().await.len() >= n }).await;
        assert!(reached, "{n} × expiration.complete published");
        self.expirations().await
    }

    /// Where the job of `order_id` stands in Redis.
    pub(crate) async fn job_status(&self, order_id: Uuid) -> Option<Status> {
        self.jobs.status(order_id).await.expect("Redis answers")
    }

    /// Waits until the order's job is in Redis.
    pub(crate) async fn job_stored(&self, order_id: Uuid) -> bool {
        eventually(WAIT, || async { self.job_status(order_id).await.is_some() }).await
    }

    /// The service's durable consumer of `order.created`: (deliveries made,
    /// deliveries acknowledged).
    pub(crate) async fn order_created_consumer(&self) -> (u64, u64) {
        let stream = self
            .bus
            .jetstream()
            .get_stream(self.bus.name(Stream::Orders.name()))
            .await
            .expect("stream exists");
        let name = self.bus.name(&common::listener::consumer_name(
            expiration::SERVICE,
            OrderCreated::SUBJECT,
        ));
        stream
            .consumer_info(name)
            .await
            .map(|info| {
                (
                    info.delivered.consumer_sequence,
                    info.ack_floor.consumer_sequence,
                )
            })
            .unwrap_or_default()
    }
}

/// An `order.created` of a new order that expires `after` from now.
pub(crate) fn order_expiring_in(after: Duration) -> OrderCreated {
    OrderCreated {
        id: Uuid::now_v7(),
        version: 0,
        status: OrderStatus::Created,
        user_id: Uuid::now_v7(),
        expires_at: Utc::now() + after,
        ticket: OrderTicket {
            id: Uuid::now_v7(),
            price: 2000,
        },
    }
}

/// A running instance of the service; stopped when dropped.
pub(crate) struct Instance {
    pub(crate) server: TestServer,
}

impl Instance {
    pub(crate) async fn get(&self, path: &str) -> reqwest::Response {
        reqwest::get(format!("{}{path}", self.server.address))
            .await
            .expect("request")
    }

    /// Shuts the instance down as SIGTERM would, and waits until its
    /// listener and worker have finished.
    pub(crate) async fn stop(self) {
        let lifecycle = self.server.lifecycle.clone();
        lifecycle.shutdown.cancel();
        lifecycle.tasks.close();
        let drained = tokio::time::timeout(WAIT, lifecycle.tasks.wait()).await;
        assert!(drained.is_ok(), "the instance drained within {WAIT:?}");
    }
}
