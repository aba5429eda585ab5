//! A JetStream namespace of its own for each test on the machine's NATS, and
//! readers for what reached its streams and consumers.

use std::time::Duration;

use async_nats::jetstream::consumer::{self, PullConsumer};
use async_nats::jetstream::message::StreamMessage;
use bytes::Bytes;
use sqlx::PgPool;
use uuid::Uuid;

use crate::bus::Bus;
use crate::config::{CommonSettings, NatsSettings};
use crate::events::{Event, Stream};
use crate::testing::{TestDatabase, eventually};

/// The NATS server tests use (`NATS_URL`, default local).
pub fn nats_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// A JetStream namespace no other test uses: `t` and 12 hex digits.
pub fn unique_prefix() -> String {
    format!("t{}", &Uuid::new_v4().simple().to_string()[..12])
}

/// NATS settings for the namespace `prefix` on the tests' server.
pub fn nats_settings(prefix: &str) -> NatsSettings {
    NatsSettings {
        url: nats_url(),
        prefix: prefix.to_string(),
        stream_replicas: 1,
        listener_batch: crate::config::DEFAULT_LISTENER_BATCH,
        // JetStream reserves a stream's byte limit up front: with hundreds
        // of test namespaces on one server, limited streams would exhaust it.
        stream_max_bytes: -1,
    }
}

/// Everything one service under test lives in: a database of its own, a
/// JetStream namespace of its own with the system's streams declared, and a
/// bus on that namespace for the test to publish and read with.
pub struct TestEnv {
    /// The service's database, empty: the service migrates it at start.
    pub db: TestDatabase,
    /// The namespace's prefix.
    pub prefix: String,
    /// A connection to the namespace.
    pub bus: Bus,
    /// The NATS server the namespace lives on.
    pub nats_url: String,
}

impl TestEnv {
    /// A fresh database and namespace on the machine's servers; `client` names
    /// the test's NATS connection.
    pub async fn new(client: &str) -> TestEnv {
        Self::on_nats(client, &nats_url()).await
    }

    /// As [`TestEnv::new`], on the NATS server at `url` (e.g. a test's own
    /// [`NatsServer`](crate::testing::NatsServer)).
    pub async fn on_nats(client: &str, url: &str) -> TestEnv {
        sweep_stale_test_streams_once();
        let prefix = unique_prefix();
        let mut settings = nats_settings(&prefix);
        settings.url = url.to_string();
        let bus = Bus::connect(&settings, client)
            .await
            .expect("NATS reachable");
        // The streams exist before the test publishes or reads, and before
        // the service starts: two concurrent creations of one stream make one
        // of them fail.
        bus.ensure_streams().await.expect("streams");
        TestEnv {
            db: TestDatabase::create_empty().await,
            prefix,
            bus,
            nats_url: url.to_string(),
        }
    }

    /// The settings every service has, pointed at this namespace (and its
    /// NATS server), with the test session key.
    pub fn common_settings(&self) -> CommonSettings {
        let mut settings = crate::testing::common_settings(&self.prefix);
        settings.nats.url = self.nats_url.clone();
        settings
    }
}

/// How old a test namespace's streams must be before a sweep deletes them.
pub const STALE_TEST_STREAMS: Duration = Duration::from_secs(30 * 60);

/// Deletes, once per process and in the background, the streams of test
/// namespaces older than [`STALE_TEST_STREAMS`], so that the shared server
/// does not fill up with them. [`TestEnv`] calls it.
pub fn sweep_stale_test_streams_once() {
    static SWEEP: std::sync::Once = std::sync::Once::new();
    SWEEP.call_once(|| {
        std::thread::spawn(|| {
            if let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                runtime.block_on(sweep_stale_test_streams());
            }
        });
    });
}

pub(crate) fn is_test_stream(name: &str) -> bool {
    let Some((prefix, _)) = name.split_once('_') else {
        return false;
    };
    prefix.len() == 13
        && prefix.starts_with('t')
        && prefix[1..].chars().all(|c| c.is_ascii_hexdigit())
}

/// Deletes the streams of test namespaces older than [`STALE_TEST_STREAMS`].
pub async fn sweep_stale_test_streams() {
    use futures::StreamExt as _;
    let Ok(client) = async_nats::connect(nats_url()).await else {
        return;
    };
    let js = async_nats::jetstream::new(client);
    let names: Vec<String> = js
        .stream_names()
        .filter_map(|n| async move { n.ok() })
        .filter(|n| std::future::ready(is_test_stream(n)))
        .collect()
        .await;
    let cutoff = chrono::Utc::now().timestamp() - STALE_TEST_STREAMS.as_secs() as i64;
    for name in names {
        let Ok(mut stream) = js.get_stream(&name).await else {
            continue;
        };
        let stale = stream
            .info()
            .await
            .is_ok_and(|info| info.created.unix_timestamp() < cutoff);
        if stale {
            let _ = js.delete_stream(&name).await;
        }
    }
}

/// Publishes `event` into `bus`'s namespace as its publisher would, with a
/// new message id; returns that id.
pub async fn publish<E: Event>(bus: &Bus, event: &E) -> Uuid {
    let id = Uuid::now_v7();
    let payload = Bytes::from(serde_json::to_vec(event).expect("an encodable event"));
    bus.publish(E::SUBJECT, id, payload, &[])
        .await
        .expect("publish");
    id
}

/// Every message in `stream` of `bus`'s namespace, in stream order; none
/// when the stream does not exist (yet).
pub async fn stream_messages(bus: &Bus, stream: Stream) -> Vec<StreamMessage> {
    let Ok(mut s) = bus.jetstream().get_stream(bus.name(stream.name())).await else {
        return Vec::new();
    };
    let Ok(info) = s.info().await else {
        return Vec::new();
    };
    let (first, last) = (info.state.first_sequence, info.state.last_sequence);
    let mut out = Vec::new();
    for seq in first..=last {
        if let Ok(m) = s.get_raw_message(seq).await {
            out.push(m);
        }
    }
    out
}

/// The payloads published on `subject` (unprefixed) in `bus`'s namespace,
/// in stream order, as JSON.
pub async fn published_json(bus: &Bus, subject: &str) -> Vec<serde_json::Value> {
    let stream = Stream::of(subject).expect("a stream holds the subject");
    stream_messages(bus, stream)
        .await
        .iter()
        .filter(|m| bus.unprefixed(m.subject.as_str()) == subject)
        .map(|m| serde_json::from_slice(&m.payload).expect("a JSON payload"))
        .collect()
}

/// The `E` events published in `bus`'s namespace, in stream order.
pub async fn published<E: Event>(bus: &Bus) -> Vec<E> {
    published_json(bus, E::SUBJECT)
        .await
        .into_iter()
        .map(|v| serde_json::from_value(v).expect("a decodable event"))
        .collect()
}

/// The `Nats-Msg-Id` header of a stream message.
pub fn msg_id(m: &StreamMessage) -> Option<String> {
    m.headers.get("Nats-Msg-Id").map(|v| v.as_str().to_string())
}

/// Waits (at most `wait`) until the outbox in `pool` has nothing left to
/// publish.
pub async fn outbox_settled(pool: &PgPool, wait: Duration) -> bool {
    eventually(wait, || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            .fetch_one(pool)
            .await
            .is_ok_and(|pending| pending == 0)
    })
    .await
}

/// Waits (at most `wait`) until at least `n` `E` events are in the stream
/// and the outbox in `pool` is empty, and returns them all: a test then sees
/// any extra event that should not have been published.
pub async fn wait_for_published<E: Event>(
    bus: &Bus,
    pool: &PgPool,
    n: usize,
    wait: Duration,
) -> Vec<E> {
    let reached = eventually(wait, || async { published::<E>(bus).await.len() >= n }).await;
    assert!(reached, "{n} × {} published", E::SUBJECT);
    assert!(outbox_settled(pool, wait).await, "the outbox settled");
    published::<E>(bus).await
}

/// The state of `service`'s durable consumer of `subject` in `bus`'s
/// namespace, once it exists.
pub async fn consumer_info(bus: &Bus, service: &str, subject: &str) -> Option<consumer::Info> {
    let stream = Stream::of(subject)?;
    let stream = bus
        .jetstream()
        .get_stream(bus.name(stream.name()))
        .await
        .ok()?;
    let name = bus.name(&crate::listener::consumer_name(service, subject));
    let mut consumer: PullConsumer = stream.get_consumer(&name).await.ok()?;
    consumer.info().await.ok().cloned()
}

/// Waits (at most `wait`) until `service`'s consumer of `subject` has
/// acknowledged every message published on it so far.
pub async fn consumed(bus: &Bus, service: &str, subject: &str, wait: Duration) -> bool {
    eventually(wait, || async {
        consumer_info(bus, service, subject)
            .await
            .is_some_and(|i| i.num_pending == 0 && i.num_ack_pending == 0)
    })
    .await
}
