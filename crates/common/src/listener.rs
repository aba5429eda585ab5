//! The listener runtime: durable pull consumers named after the consuming
//! service and shared by all its replicas, so each event is handled once per
//! service. The retry, acknowledgement and dead-letter rules live here once:
//!
//! - the handler returns an [`Outcome`]; `Applied` and `Duplicate` are acked,
//!   `NotYet` (e.g. version v+1 before v) is nak'ed with a delay;
//! - a handler error is nak'ed with an exponential backoff, and after
//!   `max_deliver` attempts the message goes to the dead-letter subject
//!   `deadletter.<service>.<subject>` with the reason, and is terminated;
//! - a message that cannot be decoded is logged with its subject, sent to the
//!   dead-letter subject and terminated, never retried;
//! - the ack is sent only after the handler returned, i.e. after its database
//!   transaction committed.

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use async_nats::jetstream::{AckKind, Message};
use futures::{FutureExt as _, StreamExt as _};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::bus::Bus;
use crate::events::{Event, Stream};

/// What a handler made of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The effect was applied and committed: ack.
    Applied,
    /// Already applied before (by version or inbox): ack and ignore.
    Duplicate,
    /// It cannot be applied yet (its predecessor has not arrived): nak with
    /// a delay so it comes back later.
    NotYet,
}

impl Outcome {
    /// The decision for a versioned replica after trying to apply version
    /// `incoming` with `UPDATE … WHERE version = incoming - 1`: `applied`
    /// says whether that update hit a row, `stored` is the replica's version
    /// (None when the replica has not heard of the entity yet).
    pub fn for_version(applied: bool, stored: Option<i64>, incoming: i64) -> Outcome {
        match (applied, stored) {
            (true, _) => Outcome::Applied,
            (false, Some(v)) if v >= incoming => Outcome::Duplicate,
            _ => Outcome::NotYet,
        }
    }
}

/// One delivery of an event to a handler.
#[derive(Debug, Clone)]
pub struct Delivery<E> {
    /// The event's id (its `Nats-Msg-Id`).
    pub id: Uuid,
    pub event: E,
    /// 1 on the first delivery.
    pub attempt: u64,
}

/// Handles one kind of event for one service.
pub trait Listener: Send + Sync + 'static {
    type Event: Event;

    /// Applies the event. Commit any database transaction before returning
    /// `Applied`; return an error to have the event redelivered.
    fn handle(
        &self,
        delivery: Delivery<Self::Event>,
    ) -> impl Future<Output = anyhow::Result<Outcome>> + Send;
}

/// Retry policy of a listener.
#[derive(Debug, Clone)]
pub struct ListenerOptions {
    /// Deliveries after which a failing message is dead-lettered.
    pub max_deliver: u64,
    /// Deliveries after which an event that is still `NotYet` is
    /// dead-lettered (its predecessor never came).
    pub max_not_yet: u64,
    /// Delay before a `NotYet` event comes back.
    pub not_yet_delay: Duration,
    /// Backoff after the first failure; doubles per delivery up to `max_backoff`.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// How long the server waits for an ack before redelivering.
    pub ack_wait: Duration,
}

impl Default for ListenerOptions {
    fn default() -> Self {
        Self {
            max_deliver: 10,
            max_not_yet: 1000,
            not_yet_delay: Duration::from_millis(250),
            min_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(30),
            ack_wait: Duration::from_secs(30),
        }
    }
}

impl ListenerOptions {
    fn backoff(&self, attempt: u64) -> Duration {
        let exp = attempt.saturating_sub(1).min(16) as u32;
        self.min_backoff
            .saturating_mul(2u32.saturating_pow(exp))
            .min(self.max_backoff)
    }
}

/// The durable consumer name of `service` for `subject`, e.g.
/// `orders-ticket-updated`.
pub fn consumer_name(service: &str, subject: &str) -> String {
    format!("{service}-{}", subject.replace('.', "-"))
}

/// Runs `listener` as `service`'s durable consumer, with the default
/// options, as a background task of `lifecycle`: every service starts its
/// listeners this way.
pub fn spawn<L: Listener>(
    lifecycle: &crate::lifecycle::Lifecycle,
    bus: &Bus,
    service: &str,
    listener: L,
) {
    let (bus, service) = (bus.clone(), service.to_string());
    lifecycle.spawn(|shutdown| run(bus, service, listener, ListenerOptions::default(), shutdown));
}

/// Consumes `L::Event` as `service` until `shutdown`. Retries the set-up
/// while NATS is unreachable; the message in hand when shutdown comes is
/// finished (handled and acknowledged) before returning.
pub async fn run<L: Listener>(
    bus: Bus,
    service: String,
    listener: L,
    options: ListenerOptions,
    shutdown: CancellationToken,
) {
    let subject = L::Event::SUBJECT;
    let mut backoff = options.min_backoff;
    while !shutdown.is_cancelled() {
        match consume(&bus, &service, &listener, &options, &shutdown).await {
            Ok(()) => break,
            Err(e) => {
                tracing::warn!(%service, subject, error = format!("{e:#}"), retry_in = ?backoff, "listener interrupted; restarting");
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
    tracing::info!(%service, subject, "listener stopped");
}

async fn consume<L: Listener>(
    bus: &Bus,
    service: &str,
    listener: &L,
    options: &ListenerOptions,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let subject = L::Event::SUBJECT;
    let stream_kind = Stream::of(subject).with_context(|| format!("no stream holds {subject}"))?;
    bus.ensure_streams().await?;
    let stream = bus
        .jetstream()
        .get_stream(bus.name(stream_kind.name()))
        .await
        .context("looking up the stream")?;
    let durable = bus.name(&consumer_name(service, subject));
    let consumer = stream
        .get_or_create_consumer(
            &durable,
            pull::Config {
                durable_name: Some(durable.clone()),
                filter_subject: bus.subject(subject),
                ack_policy: AckPolicy::Explicit,
                deliver_policy: DeliverPolicy::All,
                ack_wait: options.ack_wait,
                // Redelivery limits are enforced here, where the reason is known.
                max_deliver: -1,
                max_ack_pending: 1000,
                ..Default::default()
            },
        )
        .await
        .context("creating the durable consumer")?;
    let mut messages = consumer.messages().await.context("starting to pull")?;
    tracing::info!(%service, subject, consumer = %durable, "listening");
    loop {
        let next = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            next = messages.next() => next,
        };
        match next {
            None => anyhow::bail!("the message stream ended"),
            Some(Err(e)) => {
                tracing::debug!(%service, subject, error = %e, "pull interrupted");
            }
            Some(Ok(message)) => process(bus, service, listener, options, message).await,
        }
    }
}

async fn process<L: Listener>(
    bus: &Bus,
    service: &str,
    listener: &L,
    options: &ListenerOptions,
    message: Message,
) {
    let subject = bus.unprefixed(message.subject.as_str()).to_string();
    let attempt = message
        .info()
        .map(|i| i.delivered.max(1) as u64)
        .unwrap_or(1);
    let delivery = match decode::<L::Event>(&message) {
        Ok((id, event)) => Delivery { id, event, attempt },
        Err(reason) => {
            tracing::error!(%service, %subject, %reason, "undecodable message; terminating it");
            dead_letter(
                bus,
                service,
                &subject,
                &message,
                &format!("undecodable: {reason}"),
            )
            .await;
            return;
        }
    };
    let event_id = delivery.id;
    let outcome = AssertUnwindSafe(listener.handle(delivery))
        .catch_unwind()
        .await
        .unwrap_or_else(|_| Err(anyhow::anyhow!("the handler panicked")));
    let result = match outcome {
        Ok(Outcome::Applied | Outcome::Duplicate) => message.ack().await,
        Ok(Outcome::NotYet) if attempt >= options.max_not_yet => {
            let reason = format!(
                "not applicable after {attempt} deliveries (its predecessor never arrived)"
            );
            tracing::error!(%service, %subject, %event_id, %reason, "dead-lettering");
            dead_letter(bus, service, &subject, &message, &reason).await;
            return;
        }
        Ok(Outcome::NotYet) => {
            tracing::debug!(%service, %subject, %event_id, attempt, "not applicable yet; retrying later");
            message
                .ack_with(AckKind::Nak(Some(options.not_yet_delay)))
                .await
        }
        Err(e) if attempt >= options.max_deliver => {
            let reason = format!("failed {attempt} times: {e:#}");
            tracing::error!(%service, %subject, %event_id, %reason, "dead-lettering");
            dead_letter(bus, service, &subject, &message, &reason).await;
            return;
        }
        Err(e) => {
            let delay = options.backoff(attempt);
            tracing::warn!(%service, %subject, %event_id, attempt, retry_in = ?delay, error = format!("{e:#}"), "handler failed; will retry");
            message.ack_with(AckKind::Nak(Some(delay))).await
        }
    };
    if let Err(e) = result {
        // The server redelivers after ack_wait; the handler is idempotent.
        tracing::warn!(%service, %subject, %event_id, error = %e, "could not acknowledge");
    }
}

fn decode<E: Event>(message: &Message) -> Result<(Uuid, E), String> {
    let id = message
        .headers
        .as_ref()
        .and_then(|h| h.get("Nats-Msg-Id"))
        .ok_or("no Nats-Msg-Id header")?;
    let id = Uuid::parse_str(id.as_str()).map_err(|e| format!("Nats-Msg-Id is not a UUID: {e}"))?;
    let event = serde_json::from_slice(&message.payload).map_err(|e| e.to_string())?;
    Ok((id, event))
}

/// Publishes the message to `deadletter.<service>.<subject>` with the reason,
/// then terminates it. If the dead-letter publish fails, the message is
/// nak'ed instead, so nothing is dropped.
async fn dead_letter(bus: &Bus, service: &str, subject: &str, message: &Message, reason: &str) {
    let target = format!("deadletter.{service}.{subject}");
    let original_id = message
        .headers
        .as_ref()
        .and_then(|h| h.get("Nats-Msg-Id"))
        .map(|v| v.as_str().to_string())
        .unwrap_or_default();
    let sequence = message
        .info()
        .map(|i| i.stream_sequence)
        .unwrap_or_default();
    let dead_letter_id = format!("{service}:{subject}:{sequence}");
    let reason_header = reason.replace(['\r', '\n'], " ");
    let published = bus
        .publish_with_id(
            &target,
            &dead_letter_id,
            message.payload.clone(),
            &[
                ("Dead-Letter-Reason", reason_header.as_str()),
                ("Original-Subject", subject),
                ("Original-Msg-Id", original_id.as_str()),
            ],
        )
        .await;
    let ack = match published {
        Ok(()) => message.ack_with(AckKind::Term).await,
        Err(e) => {
            tracing::error!(%service, %subject, error = format!("{e:#}"), "dead-letter publish failed; will retry");
            message
                .ack_with(AckKind::Nak(Some(Duration::from_secs(5))))
                .await
        }
    };
    if let Err(e) = ack {
        tracing::warn!(%service, %subject, error = %e, "could not terminate a dead-lettered message");
    }
}
