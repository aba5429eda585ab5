//! The connection to NATS JetStream, and the naming of subjects, streams and
//! consumers under a deployment prefix (empty in production; unique per test).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream::context::PublishAckFuture;
use async_nats::jetstream::{self, stream};
use bytes::Bytes;
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::config::NatsSettings;
use crate::events::Stream;

/// How long JetStream remembers message ids to drop re-published duplicates.
/// The relay republishes a row whose acknowledgement it did not record
/// within one backoff (at most 5 s) plus the acknowledgement timeout, or
/// when a replica restarts; ten minutes covers both with room. A republish
/// later than that is still applied once: consumers check versions and
/// their inbox.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(10 * 60);

/// How long an event stream keeps a message. The streams are a buffer
/// between services, not their record (each database is): a consumer that
/// is down for longer than this misses what aged out.
pub const STREAM_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// How long the dead-letter stream keeps a message: long enough to look at
/// it and replay it after a holiday.
pub const DEAD_LETTER_MAX_AGE: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// The most bytes one stream holds (per server) unless
/// `NATS_STREAM_MAX_BYTES` says otherwise. JetStream reserves it up front:
/// six streams of 128 MiB fit the smallest JetStream store of the manifests
/// (900 MB); at a few hundred bytes an event, that is hundreds of thousands
/// of events per stream.
pub const STREAM_MAX_BYTES: i64 = 128 * 1024 * 1024;

/// How long a publish waits for JetStream's acknowledgement.
pub const PUBLISH_ACK_TIMEOUT: Duration = Duration::from_secs(5);

/// How many event handlers of one service run at once by default, across
/// all its listeners: each holds a database connection, and the pool must
/// keep room for requests, the relay and the other replicas.
pub const CONCURRENT_HANDLERS: usize = 4;

/// A JetStream connection for one deployment. Cheap to clone; clones share
/// the limit on concurrent handlers.
#[derive(Clone)]
pub struct Bus {
    client: async_nats::Client,
    js: jetstream::Context,
    prefix: String,
    /// The name the connection was made under: the service's name.
    client_name: String,
    /// Copies of each stream a JetStream cluster keeps.
    stream_replicas: usize,
    /// The most bytes one stream holds; -1 for no limit.
    stream_max_bytes: i64,
    /// Permits to run an event handler, shared by every listener on this bus.
    handler_slots: Arc<Semaphore>,
    /// Events of one lane a batching listener applies at once.
    listener_batch: usize,
}

impl Bus {
    /// Connects to NATS. When NATS is not reachable yet the connection is
    /// made in the background (and remade after every outage), so that a
    /// service starts and serves requests while the broker is down.
    pub async fn connect(settings: &NatsSettings, client_name: &str) -> anyhow::Result<Self> {
        let client = async_nats::ConnectOptions::new()
            .name(client_name)
            .retry_on_initial_connect()
            .connect(settings.url.as_str())
            .await
            .with_context(|| format!("connecting to NATS at {}", settings.url))?;
        let mut bus = Self::with_client(client, &settings.prefix);
        bus.stream_replicas = settings.stream_replicas;
        bus.listener_batch = settings.listener_batch.max(1);
        bus.stream_max_bytes = settings.stream_max_bytes;
        bus.client_name = client_name.to_string();
        Ok(bus)
    }

    /// A bus on an existing connection, under `prefix`.
    pub fn with_client(client: async_nats::Client, prefix: &str) -> Self {
        let mut js = jetstream::new(client.clone());
        js.set_timeout(PUBLISH_ACK_TIMEOUT);
        Self {
            client,
            js,
            prefix: prefix.to_string(),
            client_name: String::new(),
            stream_replicas: 1,
            // A bus made this way is a test's or a tool's: see
            // `NatsSettings::stream_max_bytes` for why tests set no limit.
            stream_max_bytes: -1,
            handler_slots: Arc::new(Semaphore::new(CONCURRENT_HANDLERS)),
            listener_batch: crate::config::DEFAULT_LISTENER_BATCH,
        }
    }

    /// Lets at most `handlers` event handlers run at once across the
    /// listeners of this bus and its clones (default [`CONCURRENT_HANDLERS`]).
    pub fn with_concurrent_handlers(mut self, handlers: usize) -> Self {
        self.handler_slots = Arc::new(Semaphore::new(handlers.max(1)));
        self
    }

    /// Has batching listeners take at most `batch` queued events of a lane
    /// into one call (default [`crate::config::DEFAULT_LISTENER_BATCH`]).
    pub fn with_listener_batch(mut self, batch: usize) -> Self {
        self.listener_batch = batch.max(1);
        self
    }

    /// Events of one lane a batching listener takes at once.
    pub(crate) fn listener_batch(&self) -> usize {
        self.listener_batch
    }

    /// The permits listeners take to run a handler.
    pub(crate) fn handler_slots(&self) -> &Arc<Semaphore> {
        &self.handler_slots
    }

    /// The name given to [`Bus::connect`] (services pass their own name);
    /// empty for a bus made with [`Bus::with_client`].
    pub fn client_name(&self) -> &str {
        &self.client_name
    }

    /// The underlying NATS connection.
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// The JetStream context, with the publish timeout set.
    pub fn jetstream(&self) -> &jetstream::Context {
        &self.js
    }

    /// A subject under this deployment's prefix.
    pub fn subject(&self, subject: &str) -> String {
        if self.prefix.is_empty() {
            subject.to_string()
        } else {
            format!("{}.{subject}", self.prefix)
        }
    }

    /// The subject with this deployment's prefix removed.
    pub fn unprefixed<'a>(&self, subject: &'a str) -> &'a str {
        if self.prefix.is_empty() {
            return subject;
        }
        subject
            .strip_prefix(self.prefix.as_str())
            .and_then(|s| s.strip_prefix('.'))
            .unwrap_or(subject)
    }

    /// A stream, consumer or other JetStream name under this deployment's prefix.
    pub fn name(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}_{name}", self.prefix)
        }
    }

    /// Creates every stream of the system if missing, with file storage,
    /// the duplicate window and the limits ([`STREAM_MAX_AGE`] or
    /// [`DEAD_LETTER_MAX_AGE`], `NATS_STREAM_MAX_BYTES`, discarding the oldest
    /// messages when full); updates an existing one to this configuration.
    /// Idempotent: every service runs it at start.
    pub async fn ensure_streams(&self) -> anyhow::Result<()> {
        for s in Stream::ALL {
            let config = self.stream_config(s);
            let name = config.name.clone();
            if let Err(e) = self.js.create_or_update_stream(config).await {
                // Another replica or service may have created it at the same
                // moment; JetStream then reports overlapping subjects.
                if self.js.get_stream(&name).await.is_err() {
                    return Err(anyhow::Error::new(e).context(format!("setting up stream {name}")));
                }
            }
        }
        Ok(())
    }

    /// The configuration [`Bus::ensure_streams`] gives stream `s`. Only
    /// limits nats-server 2.9 knows: it is the server the tests run against.
    pub fn stream_config(&self, s: Stream) -> stream::Config {
        stream::Config {
            name: self.name(s.name()),
            subjects: vec![self.subject(s.subjects())],
            storage: stream::StorageType::File,
            duplicate_window: DUPLICATE_WINDOW,
            num_replicas: self.stream_replicas,
            max_age: match s {
                Stream::DeadLetter => DEAD_LETTER_MAX_AGE,
                _ => STREAM_MAX_AGE,
            },
            max_bytes: self.stream_max_bytes,
            // Discarding new messages would stop a service's events at the
            // relay until old ones age out; the oldest are, in normal
            // operation, long consumed.
            discard: stream::DiscardPolicy::Old,
            ..Default::default()
        }
    }

    /// Publishes one message and waits for JetStream to store it. The id
    /// becomes `Nats-Msg-Id`: publishing the same id again within the
    /// duplicate window stores nothing new.
    pub async fn publish(
        &self,
        subject: &str,
        id: Uuid,
        payload: Bytes,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<()> {
        self.publish_with_id(subject, &id.to_string(), payload, headers)
            .await
    }

    pub(crate) async fn publish_with_id(
        &self,
        subject: &str,
        id: &str,
        payload: Bytes,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<()> {
        let ack = self.send_publish(subject, id, payload, headers).await?;
        ack.await
            .with_context(|| format!("waiting for JetStream to store {subject}"))?;
        Ok(())
    }

    /// Sends one message with `Nats-Msg-Id` = `id` and returns the future of
    /// JetStream's acknowledgement without waiting for it, so that a caller
    /// can have many publishes in flight. Messages sent one after another are
    /// stored in that order. The acknowledgement's [`PUBLISH_ACK_TIMEOUT`]
    /// starts when the future is first polled.
    pub async fn send_publish(
        &self,
        subject: &str,
        id: &str,
        payload: Bytes,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<PublishAckFuture> {
        let mut message = jetstream::message::PublishMessage::build()
            .payload(payload)
            .message_id(id);
        for (name, value) in headers {
            message = message.header(*name, *value);
        }
        self.js
            .send_publish(self.subject(subject), message)
            .await
            .with_context(|| format!("publishing {subject}"))
    }
}
