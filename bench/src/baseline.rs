//! What JetStream alone does on this machine, as the yardstick for the
//! event pipeline: async-nats publishes N messages of a `ticket.created`
//! event's size into a file-stored stream of the run's own (pipelined: many
//! publishes in flight, each with a `Nats-Msg-Id` as the outbox relay sends
//! them), then a durable pull consumer with explicit acks reads them all back.

use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use async_nats::jetstream::{self, stream};
use bytes::Bytes;
use common::events::{TicketCreated, TicketSnapshot};
use futures::StreamExt as _;
use futures::stream::FuturesUnordered;
use tokio::time::Instant;
use uuid::Uuid;

/// Publishes in flight at once before the oldest ack is awaited.
pub const PUBLISH_WINDOW: usize = 256;

/// The figures of one baseline run.
pub struct Baseline {
    pub messages: usize,
    pub payload_bytes: usize,
    /// From the first publish to the last ack.
    pub publish: Duration,
    /// From starting to pull to acking the last message.
    pub consume: Duration,
}

impl Baseline {
    /// Messages published (and acknowledged by JetStream) per second.
    pub fn publish_rate(&self) -> f64 {
        self.messages as f64 / self.publish.as_secs_f64().max(f64::EPSILON)
    }

    /// Messages consumed and acked per second.
    pub fn consume_rate(&self) -> f64 {
        self.messages as f64 / self.consume.as_secs_f64().max(f64::EPSILON)
    }

    /// The rate of the slower direction: what a publish-then-consume
    /// pipeline of raw JetStream can sustain.
    pub fn pipeline_rate(&self) -> f64 {
        self.publish_rate().min(self.consume_rate())
    }
}

/// A `ticket.created` payload as the tickets service publishes it.
pub fn ticket_created_payload() -> anyhow::Result<Bytes> {
    let event = TicketCreated(TicketSnapshot {
        id: Uuid::now_v7(),
        version: 0,
        title: "Flash sale 12345".into(),
        price: 4250,
        user_id: Uuid::now_v7(),
        order_id: None,
        details: Default::default(),
    });
    Ok(serde_json::to_vec(&event)
        .context("encoding a ticket.created event")?
        .into())
}

/// Publishes and consumes `messages` messages of `payload` in a stream of
/// the namespace `prefix`, deleting the stream afterwards.
pub async fn run(
    nats_url: &str,
    prefix: &str,
    messages: usize,
    payload: Bytes,
) -> anyhow::Result<Baseline> {
    let client = async_nats::connect(nats_url)
        .await
        .context("connecting to NATS")?;
    let js = jetstream::new(client.clone());
    let name = format!("{prefix}_BASELINE");
    let subject = format!("{prefix}.baseline");
    let stream = js
        .create_stream(stream::Config {
            name: name.clone(),
            subjects: vec![subject.clone()],
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await
        .context("creating the baseline stream")?;
    let measured = measure(&js, &stream, &subject, messages, payload.clone()).await;
    js.delete_stream(&name)
        .await
        .context("deleting the baseline stream")?;
    let (publish, consume) = measured?;
    Ok(Baseline {
        messages,
        payload_bytes: payload.len(),
        publish,
        consume,
    })
}

async fn measure(
    js: &jetstream::Context,
    stream: &stream::Stream,
    subject: &str,
    messages: usize,
    payload: Bytes,
) -> anyhow::Result<(Duration, Duration)> {
    let start = Instant::now();
    let mut acks = FuturesUnordered::new();
    for _ in 0..messages {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", Uuid::now_v7().to_string().as_str());
        let ack = js
            .publish_with_headers(subject.to_string(), headers, payload.clone())
            .await
            .context("publishing")?;
        acks.push(ack.into_future());
        if acks.len() >= PUBLISH_WINDOW {
            acks.next()
                .await
                .context("an ack")?
                .context("publish acknowledged")?;
        }
    }
    while let Some(ack) = acks.next().await {
        ack.context("publish acknowledged")?;
    }
    let publish = start.elapsed();

    let consumer = stream
        .create_consumer(pull::Config {
            durable_name: Some("baseline".into()),
            ack_policy: AckPolicy::Explicit,
            deliver_policy: DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .context("creating the baseline consumer")?;
    let start = Instant::now();
    let mut pulled = consumer.messages().await.context("starting to pull")?;
    for _ in 0..messages {
        let message = pulled
            .next()
            .await
            .context("the consumer ended early")?
            .map_err(|e| anyhow::anyhow!("pulling: {e}"))?;
        message
            .ack()
            .await
            .map_err(|e| anyhow::anyhow!("acking: {e}"))?;
    }
    js.client()
        .flush()
        .await
        .context("flushing the last acks")?;
    let consume = start.elapsed();
    Ok((publish, consume))
}
