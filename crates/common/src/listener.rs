//! The listener runtime: durable pull consumers named after the consuming
//! service and shared by all its replicas, so each event is handled once per
//! service. The retry, acknowledgement and dead-letter rules live here once:
//!
//! - the handler returns an [`Outcome`]; `Applied` and `Duplicate` are acked,
//!   `NotYet` (e.g. version v+1 before v) is nak'ed with a delay, `Reject`
//!   (permanently unprocessable) is dead-lettered at once;
//! - a handler error is nak'ed with an exponential backoff, and after
//!   `max_deliver` attempts the message goes to the dead-letter subject
//!   `deadletter.<service>.<subject>` with the reason and the attempts
//!   ([`DEAD_LETTER_REASON`], [`DEAD_LETTER_ATTEMPTS`]), and is terminated;
//!   `buytickets-admin` lists, replays and discards dead letters;
//! - an event's id is its `Nats-Msg-Id`, unless it carries [`EVENT_ID`]: a
//!   replayed dead letter is published under a new message id (so that
//!   JetStream's duplicate window does not drop it) but keeps its event id,
//!   so inbox de-duplication still recognises it;
//! - a message that cannot be decoded is logged with its subject, sent to the
//!   dead-letter subject and terminated, never retried;
//! - the ack is sent only after the handler returned, i.e. after its database
//!   transaction committed.
//!
//! A replica handles several messages of its consumer at once, in
//! [`ListenerOptions::concurrency`] lanes: a message goes to the lane of its
//! [`Event::ordering_key`] (the ticket, the order), and a lane handles its
//! messages one at a time in delivery order, so the events of one entity are
//! applied in order while those of different entities overlap. How many
//! handlers run at once across all listeners of a service is bounded by its
//! [`Bus`] ([`crate::bus::CONCURRENT_HANDLERS`] by default), so that
//! listeners never take the database connections requests need.
//!
//! A listener that sets [`Listener::BATCHES`] is handed what queued up in
//! a lane while the lane was busy (at most the bus's listener batch,
//! `LISTENER_BATCH`) in one call, which applies it in one transaction: under
//! a burst, one commit carries many events instead of one. Each message is
//! still settled by its own outcome, in delivery order.
//!
//! The consumer's ack wait is short ([`ListenerOptions::ack_wait`]) so that
//! the messages a dead replica held go to another replica within seconds;
//! while a message is held (queued in a lane or being handled) the runtime
//! tells the server it is still working on it ("in progress" acks), so a
//! slow handler is not redelivered behind its back.
//!
//! Each delivery is handled inside a span `event` with the service, subject,
//! event id, attempt and trace id, and with the message's trace context
//! current (see [`crate::trace`]), so events the handler enqueues continue
//! the trace. Metrics (label `service` and `subject`): `events_handled_total`
//! by `outcome`, `events_redelivered_total`, `events_dead_lettered_total`,
//! `consumer_pending_messages` and `event_lag_seconds` (enqueue to handled).

use std::collections::HashMap;
use std::hash::{Hash as _, Hasher as _};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use async_nats::Subject;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use async_nats::jetstream::{AckKind, Message};
use chrono::{DateTime, Utc};
use futures::{FutureExt as _, StreamExt as _};
use tokio::sync::{Mutex, Semaphore, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;
use uuid::Uuid;

use crate::bus::Bus;
use crate::events::{Event, Stream};
use crate::outbox::ENQUEUED_AT;
use crate::trace::{self, TRACEPARENT, TraceContext};

/// A header carrying the event's id when it differs from the message's
/// `Nats-Msg-Id` (a replayed dead letter).
pub const EVENT_ID: &str = "Buytickets-Event-Id";
/// The dead letter's header saying why it was dead-lettered.
pub const DEAD_LETTER_REASON: &str = "Dead-Letter-Reason";
/// The dead letter's header counting the deliveries it was given.
pub const DEAD_LETTER_ATTEMPTS: &str = "Dead-Letter-Attempts";
/// The dead letter's header naming the subject it came from (unprefixed).
pub const ORIGINAL_SUBJECT: &str = "Original-Subject";
/// The dead letter's header holding the event's id.
pub const ORIGINAL_MSG_ID: &str = "Original-Msg-Id";

/// What a handler made of an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The effect was applied and committed: ack.
    Applied,
    /// Already applied before (by version or inbox): ack and ignore.
    Duplicate,
    /// It cannot be applied yet (its predecessor has not arrived): nak with
    /// a delay so it comes back later.
    NotYet,
    /// It can never be applied (the reason says why): dead-lettered at once
    /// with the reason, without retries.
    Reject(String),
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
    /// The decoded payload.
    pub event: E,
    /// 1 on the first delivery.
    pub attempt: u64,
}

/// Handles one kind of event for one service.
pub trait Listener: Send + Sync + 'static {
    /// The event it handles; its subject names the durable consumer.
    type Event: Event;

    /// Applies the event. Commit any database transaction before returning
    /// `Applied`; return an error to have the event redelivered. Called for
    /// events of different ordering keys concurrently, and for events of
    /// one key one at a time.
    fn handle(
        &self,
        delivery: Delivery<Self::Event>,
    ) -> impl Future<Output = anyhow::Result<Outcome>> + Send;

    /// Whether the runtime may hand this listener the events queued in one
    /// lane together, through [`Listener::handle_batch`].
    const BATCHES: bool = false;

    /// Applies `deliveries` (events queued in one lane, in delivery order,
    /// at most the bus's listener batch) and answers one outcome per
    /// delivery, in the same order. Called only when [`Listener::BATCHES`]
    /// is true, and only for two or more events. An implementation applies
    /// them in one transaction, so that a run of events costs one commit; an
    /// error fails the whole batch, and every event of it is redelivered.
    /// The default handles them one by one.
    fn handle_batch(
        &self,
        deliveries: Vec<Delivery<Self::Event>>,
    ) -> impl Future<Output = anyhow::Result<Vec<Outcome>>> + Send {
        async move {
            let mut outcomes = Vec::with_capacity(deliveries.len());
            for delivery in deliveries {
                outcomes.push(self.handle(delivery).await?);
            }
            Ok(outcomes)
        }
    }
}

/// Retry, concurrency and recovery policy of a listener.
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
    /// The longest backoff.
    pub max_backoff: Duration,
    /// How long the server waits for an ack (or an "in progress" signal)
    /// before redelivering: the longest a dead replica holds its messages.
    /// Held messages are signalled in progress every third of it.
    pub ack_wait: Duration,
    /// Lanes per replica: how many messages of different ordering keys may
    /// be in hand at once. The handlers that actually run at once are further
    /// limited per service by the bus (see [`Bus::with_concurrent_handlers`]).
    pub concurrency: usize,
}

impl Default for ListenerOptions {
    fn default() -> Self {
        Self {
            max_deliver: 10,
            max_not_yet: 1000,
            not_yet_delay: Duration::from_millis(250),
            min_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(30),
            ack_wait: Duration::from_secs(4),
            concurrency: 16,
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

    fn lanes(&self) -> usize {
        self.concurrency.max(1)
    }

    /// Messages a replica holds at most (pulled, queued or being handled).
    fn max_in_hand(&self) -> usize {
        self.lanes() * 16
    }

    fn progress_interval(&self) -> Duration {
        (self.ack_wait / 3).max(Duration::from_millis(100))
    }
}

/// The most messages the server lets one consumer have unacknowledged,
/// across all replicas.
const MAX_ACK_PENDING: i64 = 10_000;

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
/// while NATS is unreachable. When shutdown comes, the messages being
/// handled are finished (handled and acknowledged) and those still queued
/// are handed back to the server for another replica, before returning.
/// Everything runs inside the returned future, without spawned tasks: if
/// it is dropped, nothing of this replica goes on handling.
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

/// A message in this replica's hands, with what was decoded from it.
struct Held<E> {
    message: Message,
    decoded: Result<(Uuid, E), String>,
    _slot: tokio::sync::OwnedSemaphorePermit,
}

/// The reply subjects of the messages this replica holds, by consumer
/// sequence (one per delivery), for the "in progress" signals. An async
/// lock: the signals are sent while holding it, and a message leaves the
/// map before it is acknowledged, so no "in progress" can follow its ack or
/// nak on the wire (one after a delayed nak would push the redelivery back
/// by a whole ack wait).
type InHand = Arc<Mutex<HashMap<u64, Subject>>>;

/// What every lane of one consumer shares.
struct Consuming<'a, L> {
    bus: &'a Bus,
    service: &'a str,
    listener: &'a L,
    options: &'a ListenerOptions,
    shutdown: &'a CancellationToken,
    in_hand: InHand,
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
    let config = pull::Config {
        durable_name: Some(durable.clone()),
        filter_subject: bus.subject(subject),
        ack_policy: AckPolicy::Explicit,
        deliver_policy: DeliverPolicy::All,
        ack_wait: options.ack_wait,
        // Redelivery limits are enforced here, where the reason is known.
        max_deliver: -1,
        max_ack_pending: MAX_ACK_PENDING,
        ..Default::default()
    };
    // Creating a durable consumer that exists updates its configuration
    // (the server applies the changes it allows, such as the ack wait), so
    // consumers made with older settings converge to these.
    let consumer = match stream.create_consumer(config).await {
        Ok(consumer) => consumer,
        Err(e) => {
            tracing::warn!(%service, subject, consumer = %durable, error = %e, "cannot update the consumer's configuration; using it as it is");
            stream
                .get_consumer::<pull::Config>(&durable)
                .await
                .map_err(|e| anyhow::anyhow!("creating the durable consumer: {e}"))?
        }
    };
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(options.lanes() * 4)
        .messages()
        .await
        .context("starting to pull")?;
    tracing::info!(%service, subject, consumer = %durable, lanes = options.lanes(), "listening");

    let consuming = Consuming {
        bus,
        service,
        listener,
        options,
        shutdown,
        in_hand: Arc::new(Mutex::new(HashMap::new())),
    };
    let slots = Arc::new(Semaphore::new(options.max_in_hand()));
    let (lanes, receivers): (Vec<_>, Vec<_>) = (0..options.lanes())
        .map(|_| mpsc::unbounded_channel::<Held<L::Event>>())
        .unzip();

    let consuming = &consuming;
    let dispatch = async move {
        // `lanes` (the senders) is dropped when dispatching ends, which
        // lets every lane finish what it was given and stop.
        let lanes = lanes;
        loop {
            let slot = tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                slot = slots.clone().acquire_owned() => slot.context("the in-hand limit closed")?,
            };
            let next = tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                next = messages.next() => next,
            };
            let message = match next {
                None => anyhow::bail!("the message stream ended"),
                Some(Err(e)) => {
                    tracing::debug!(%service, subject, error = %e, "pull interrupted");
                    continue;
                }
                Some(Ok(message)) => message,
            };
            let held = consuming.take(message, slot).await;
            let lane = lane_of(&held, lanes.len());
            if lanes[lane].send(held).is_err() {
                anyhow::bail!("a lane stopped");
            }
        }
    };
    let batch = if L::BATCHES { bus.listener_batch() } else { 1 };
    let work = futures::future::join_all(receivers.into_iter().map(|mut queue| async move {
        while let Some(held) = queue.recv().await {
            // What queued up in the lane while it was busy goes in one batch.
            let mut run = vec![held];
            while run.len() < batch {
                match queue.try_recv() {
                    Ok(next) => run.push(next),
                    Err(_) => break,
                }
            }
            if run.len() > 1 {
                consuming.process_batch(run).await;
            } else {
                for held in run {
                    consuming.process(held).await;
                }
            }
        }
    }));
    let handling = async { tokio::join!(dispatch, work).0 };
    tokio::select! {
        result = handling => result,
        never = consuming.signal_progress() => match never {},
    }
}

impl<L: Listener> Consuming<'_, L> {
    /// Decodes a message, records it as held and counts its delivery.
    async fn take(
        &self,
        message: Message,
        slot: tokio::sync::OwnedSemaphorePermit,
    ) -> Held<L::Event> {
        let subject = self.bus.unprefixed(message.subject.as_str()).to_string();
        if let Ok(info) = message.info() {
            metrics::gauge!("consumer_pending_messages", "service" => self.service.to_string(), "subject" => subject.clone())
                .set(info.pending as f64);
            if info.delivered > 1 {
                metrics::counter!("events_redelivered_total", "service" => self.service.to_string(), "subject" => subject)
                    .increment(1);
            }
            if let Some(reply) = &message.reply {
                self.in_hand
                    .lock()
                    .await
                    .insert(info.consumer_sequence, reply.clone());
            }
        }
        let decoded = decode::<L::Event>(&message);
        Held {
            message,
            decoded,
            _slot: slot,
        }
    }

    /// Stops the "in progress" signals of a message: call it before
    /// acknowledging, nak'ing or terminating the message.
    async fn release(&self, message: &Message) {
        if let Ok(info) = message.info() {
            self.in_hand.lock().await.remove(&info.consumer_sequence);
        }
    }

    /// Tells the server, every third of the ack wait, that every held
    /// message is still being worked on. Never returns.
    async fn signal_progress(&self) -> std::convert::Infallible {
        let every = self.options.progress_interval();
        let mut ticks = tokio::time::interval_at(Instant::now() + every, every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let in_hand = self.in_hand.lock().await;
            for reply in in_hand.values() {
                if let Err(e) = self
                    .bus
                    .client()
                    .publish(reply.clone(), "+WPI".into())
                    .await
                {
                    tracing::debug!(service = self.service, error = %e, "could not signal progress");
                }
            }
        }
    }

    /// Handles one held message in its own span and trace context, then
    /// acknowledges, naks or dead-letters it.
    async fn process(&self, held: Held<L::Event>) {
        let Held {
            message, decoded, ..
        } = held;
        let subject = self.bus.unprefixed(message.subject.as_str()).to_string();
        if self.shutdown.is_cancelled() {
            // Not started: hand it back at once for another replica.
            self.release(&message).await;
            if let Err(e) = message.ack_with(AckKind::Nak(None)).await {
                tracing::debug!(service = self.service, %subject, error = %e, "could not hand a message back");
            }
            return;
        }
        let attempt = attempt_of(&message);
        let context = trace_context(&message);
        let event_id = header(&message, "Nats-Msg-Id").unwrap_or_default();
        let span = tracing::info_span!(
            "event",
            service = self.service,
            %subject,
            event_id,
            attempt,
            trace_id = %context.trace_id()
        );
        let handling = self.decide(&message, &subject, decoded, attempt);
        trace::scope(context, handling.instrument(span)).await;
    }

    async fn decide(
        &self,
        message: &Message,
        subject: &str,
        decoded: Result<(Uuid, L::Event), String>,
        attempt: u64,
    ) {
        let delivery = match decoded {
            Ok((id, event)) => Delivery { id, event, attempt },
            Err(reason) => {
                self.release(message).await;
                self.count(subject, "undecodable");
                tracing::error!(%reason, "undecodable message; terminating it");
                dead_letter(
                    self.bus,
                    self.service,
                    subject,
                    message,
                    &format!("undecodable: {reason}"),
                )
                .await;
                return;
            }
        };
        let outcome = self.run(self.listener.handle(delivery)).await;
        self.settle(message, subject, attempt, outcome).await;
    }

    /// Handles the decoded messages of `held` (events queued in one lane) in
    /// one call of [`Listener::handle_batch`], inside one span `events`, then
    /// settles each message by its own outcome. An undecodable message is
    /// dead-lettered on its own, as always.
    async fn process_batch(&self, held: Vec<Held<L::Event>>) {
        if self.shutdown.is_cancelled() {
            for held in held {
                self.process(held).await;
            }
            return;
        }
        let mut taken = Vec::with_capacity(held.len());
        let mut deliveries = Vec::with_capacity(held.len());
        for held in held {
            match held.decoded {
                Ok((id, event)) => {
                    let attempt = attempt_of(&held.message);
                    deliveries.push(Delivery { id, event, attempt });
                    taken.push((held.message, attempt, held._slot));
                }
                Err(reason) => {
                    let held = Held {
                        message: held.message,
                        decoded: Err(reason),
                        _slot: held._slot,
                    };
                    self.process(held).await;
                }
            }
        }
        let Some((first, ..)) = taken.first() else {
            return;
        };
        let subject = self.bus.unprefixed(first.subject.as_str()).to_string();
        // One span for the run; it continues the first event's trace.
        let context = trace_context(first);
        let span = tracing::info_span!(
            "events",
            service = self.service,
            %subject,
            events = taken.len(),
            first_event_id = event_id(first).unwrap_or_default(),
            trace_id = %context.trace_id()
        );
        let settling = async {
            let count = deliveries.len();
            let outcomes = match self.run(self.listener.handle_batch(deliveries)).await {
                Ok(outcomes) if outcomes.len() == count => outcomes.into_iter().map(Ok).collect(),
                Ok(outcomes) => {
                    let reason = format!(
                        "the handler answered {} outcomes for {count} events",
                        outcomes.len()
                    );
                    (0..count)
                        .map(|_| Err(anyhow::anyhow!(reason.clone())))
                        .collect()
                }
                Err(e) => {
                    let reason = format!("{e:#}");
                    (0..count)
                        .map(|_| Err(anyhow::anyhow!(reason.clone())))
                        .collect::<Vec<_>>()
                }
            };
            for ((message, attempt, _slot), outcome) in taken.iter().zip(outcomes) {
                self.settle(message, &subject, *attempt, outcome).await;
            }
        };
        trace::scope(context, settling.instrument(span)).await;
    }

    /// Runs a handler's future under one of the bus's handler permits; a
    /// panic becomes an error.
    async fn run<T>(&self, handling: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
        match self.bus.handler_slots().acquire().await {
            Ok(_running) => AssertUnwindSafe(handling)
                .catch_unwind()
                .await
                .unwrap_or_else(|_| Err(anyhow::anyhow!("the handler panicked"))),
            Err(_) => Err(anyhow::anyhow!("the handler limit closed")),
        }
    }

    fn count(&self, subject: &str, outcome: &'static str) {
        metrics::counter!("events_handled_total", "service" => self.service.to_string(), "subject" => subject.to_string(), "outcome" => outcome)
            .increment(1);
    }

    /// Acknowledges, naks or dead-letters `message` by what its handler
    /// made of it.
    async fn settle(
        &self,
        message: &Message,
        subject: &str,
        attempt: u64,
        outcome: anyhow::Result<Outcome>,
    ) {
        let (service, options) = (self.service, self.options);
        let handled = |outcome: &'static str| self.count(subject, outcome);
        self.release(message).await;
        let result = match outcome {
            Ok(outcome @ (Outcome::Applied | Outcome::Duplicate)) => {
                handled(if outcome == Outcome::Applied {
                    "applied"
                } else {
                    "duplicate"
                });
                if let Some(lag) = lag(message) {
                    metrics::histogram!("event_lag_seconds", "service" => service.to_string(), "subject" => subject.to_string())
                        .record(lag.as_secs_f64());
                }
                message.ack().await
            }
            Ok(Outcome::Reject(reason)) => {
                handled("rejected");
                let reason = format!("rejected: {reason}");
                tracing::error!(%reason, "dead-lettering");
                dead_letter(self.bus, service, subject, message, &reason).await;
                return;
            }
            Ok(Outcome::NotYet) if attempt >= options.max_not_yet => {
                handled("not_yet");
                let reason = format!(
                    "not applicable after {attempt} deliveries (its predecessor never arrived)"
                );
                tracing::error!(%reason, "dead-lettering");
                dead_letter(self.bus, service, subject, message, &reason).await;
                return;
            }
            Ok(Outcome::NotYet) => {
                handled("not_yet");
                tracing::debug!("not applicable yet; retrying later");
                message
                    .ack_with(AckKind::Nak(Some(options.not_yet_delay)))
                    .await
            }
            Err(e) if attempt >= options.max_deliver => {
                handled("error");
                let reason = format!("failed {attempt} times: {e:#}");
                tracing::error!(%reason, "dead-lettering");
                dead_letter(self.bus, service, subject, message, &reason).await;
                return;
            }
            Err(e) => {
                handled("error");
                let delay = options.backoff(attempt);
                tracing::warn!(retry_in = ?delay, error = format!("{e:#}"), "handler failed; will retry");
                message.ack_with(AckKind::Nak(Some(delay))).await
            }
        };
        if let Err(e) = result {
            // The server redelivers after ack_wait; the handler is idempotent.
            tracing::warn!(error = %e, "could not acknowledge");
        }
    }
}

/// The lane of a message: by its event's ordering key, else by its id; an
/// undecodable message by its stream sequence.
fn lane_of<E: Event>(held: &Held<E>, lanes: usize) -> usize {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    match &held.decoded {
        Ok((id, event)) => event.ordering_key().unwrap_or(*id).hash(&mut hasher),
        Err(_) => held
            .message
            .info()
            .map(|i| i.stream_sequence)
            .unwrap_or_default()
            .hash(&mut hasher),
    }
    (hasher.finish() % lanes as u64) as usize
}

/// 1 on the first delivery.
fn attempt_of(message: &Message) -> u64 {
    message
        .info()
        .map(|i| i.delivered.max(1) as u64)
        .unwrap_or(1)
}

/// The trace a message's handling continues: its `traceparent`'s, else a new one.
fn trace_context(message: &Message) -> TraceContext {
    header(message, TRACEPARENT)
        .and_then(TraceContext::parse)
        .map(|c| c.child())
        .unwrap_or_else(TraceContext::new_root)
}

fn header<'a>(message: &'a Message, name: &str) -> Option<&'a str> {
    message
        .headers
        .as_ref()
        .and_then(|h| h.get(name))
        .map(|v| v.as_str())
}

/// Time since the event was enqueued, from its `Buytickets-Enqueued-At`.
fn lag(message: &Message) -> Option<Duration> {
    let enqueued = DateTime::parse_from_rfc3339(header(message, ENQUEUED_AT)?).ok()?;
    (Utc::now() - enqueued.with_timezone(&Utc)).to_std().ok()
}

/// The event's id: [`EVENT_ID`] when present, else `Nats-Msg-Id`.
fn event_id(message: &Message) -> Option<&str> {
    header(message, EVENT_ID).or_else(|| header(message, "Nats-Msg-Id"))
}

fn decode<E: Event>(message: &Message) -> Result<(Uuid, E), String> {
    let id = event_id(message).ok_or("no Nats-Msg-Id header")?;
    let id = Uuid::parse_str(id).map_err(|e| format!("the event id is not a UUID: {e}"))?;
    let event = serde_json::from_slice(&message.payload).map_err(|e| e.to_string())?;
    Ok((id, event))
}

/// Publishes the message to `deadletter.<service>.<subject>` with the reason,
/// then terminates it. If the dead-letter publish fails, the message is
/// nak'ed instead, so nothing is dropped.
async fn dead_letter(bus: &Bus, service: &str, subject: &str, message: &Message, reason: &str) {
    let target = format!("deadletter.{service}.{subject}");
    let original_id = event_id(message).unwrap_or_default();
    let (sequence, attempts) = message
        .info()
        .map(|i| (i.stream_sequence, i.delivered))
        .unwrap_or_default();
    let dead_letter_id = format!("{service}:{subject}:{sequence}");
    let reason_header = reason.replace(['\r', '\n'], " ");
    let attempts = attempts.to_string();
    let published = bus
        .publish_with_id(
            &target,
            &dead_letter_id,
            message.payload.clone(),
            &[
                (DEAD_LETTER_REASON, reason_header.as_str()),
                (DEAD_LETTER_ATTEMPTS, attempts.as_str()),
                (ORIGINAL_SUBJECT, subject),
                (ORIGINAL_MSG_ID, original_id),
            ],
        )
        .await;
    let ack = match published {
        Ok(()) => {
            metrics::counter!("events_dead_lettered_total", "service" => service.to_string(), "subject" => subject.to_string())
                .increment(1);
            message.ack_with(AckKind::Term).await
        }
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
