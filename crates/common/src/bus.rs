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
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(10 * 60);

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

    /// Creates every stream of the system if missing, with file storage and
    /// the duplicate window; updates an existing one to this configuration.
    /// Idempotent: every service runs it at start.
    pub async fn ensure_streams(&self) -> anyhow::Result<()> {
        for s in Stream::ALL {
            let config = stream::Config {
                name: self.name(s.name()),
                subjects: vec![self.subject(s.subjects())],
                storage: stream::StorageType::File,
                duplicate_window: DUPLICATE_WINDOW,
                num_replicas: self.stream_replicas,
                ..Default::default()
            };
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
