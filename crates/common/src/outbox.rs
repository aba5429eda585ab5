//! The transactional outbox. A service never publishes from a request
//! handler: it calls [`enqueue`] inside the transaction that changes its
//! data, and the [`Relay`] publishes committed rows to JetStream in the order
//! they were enqueued, then marks the published rows. If NATS is down,
//! requests still succeed and the events go out when it is back.
//!
//! A pass of the relay sends a whole batch before waiting for JetStream's
//! acknowledgements (pipelined, in enqueue order on one connection), then
//! marks exactly the rows whose acknowledgement arrived. A row whose
//! acknowledgement did not arrive stays pending even if JetStream stored it;
//! publishing it again is harmless because its `Nats-Msg-Id` (the event id)
//! makes JetStream drop the duplicate within [`crate::bus::DUPLICATE_WINDOW`].
//! Within a pass each row after the first is sent on the condition that
//! the stream's last message is the row before it (JetStream's
//! `Nats-Expected-Last-Msg-Id`; the duplicate check comes first, so a
//! republished row is still dropped as a duplicate): if the connection breaks
//! mid-batch, rows still queued in the client that go out after the
//! reconnection are refused instead of overtaking a row the broker lost, and
//! the stream stays in enqueue order.
//!
//! Several replicas may run the relay on one database: a transaction-scoped
//! advisory lock lets one of them publish at a time, which keeps the order.
//! A replica whose database connection hangs in the middle of a pass would
//! keep that lock, and every replica's relay with it, for as long as
//! PostgreSQL keeps the session; the relay's connection ([`relay_pool`])
//! has PostgreSQL end a transaction idle for [`RELAY_IDLE_IN_TRANSACTION`].
//!
//! [`enqueue`] wakes the relays of its own process; it does not use
//! PostgreSQL's `NOTIFY`, because a notifying transaction holds a cluster-wide
//! lock through its commit, which serialises every commit behind one WAL
//! flush (on the development machine 16 clients committed 4,095 one-row
//! transactions/s without it and 1,945 with it). The wake comes before the
//! enqueuing transaction commits, so after a wake the relay keeps looking, at
//! growing intervals, for [`LINGER`]; rows committed by another process (or
//! later than that) are found by the polling interval.
//!
//! Each message carries the row's trace context (`traceparent`, see
//! [`crate::trace`]) and its enqueue time (`Buytickets-Enqueued-At`), from
//! which listeners measure the event's lag.

use std::sync::LazyLock;
use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream::context::PublishAckFuture;
use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::{PgConnection, PgPool};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::bus::Bus;
use crate::events::Event;
use crate::trace::{self, TRACEPARENT};

/// JetStream refuses a message with this header unless the stream's last
/// message has this id.
const EXPECTED_LAST_MSG_ID: &str = "Nats-Expected-Last-Msg-Id";

/// The header carrying the time the event was enqueued (RFC 3339, UTC).
pub const ENQUEUED_AT: &str = "Buytickets-Enqueued-At";

/// Raised by [`enqueue`]; every relay of the process watches it.
static WAKE: LazyLock<watch::Sender<()>> = LazyLock::new(|| watch::Sender::new(()));

/// How long after a wake the relay keeps looking for the row that woke it,
/// which may commit after the wake.
pub const LINGER: Duration = Duration::from_millis(250);

/// The first and the longest pause between two looks while lingering.
const LINGER_STEP: (Duration, Duration) = (Duration::from_millis(1), Duration::from_millis(32));

/// The most rows one pass sends before awaiting acknowledgements: the
/// JetStream client's default limit of publishes awaiting an ack. Beyond it
/// a send would wait for an ack that is only awaited after all sends.
pub const MAX_BATCH: i64 = 5_000;

/// Key of the advisory lock that elects the publishing replica.
pub const RELAY_LOCK: i64 = 0x6f75_7462_6f78; // "outbox"

/// How long a relay's transaction may sit idle before PostgreSQL ends its
/// session: twice the longest a pass waits for acknowledgements
/// ([`crate::bus::PUBLISH_ACK_TIMEOUT`]), so only a relay that stopped
/// mid-pass (its database connection hung) is cut off, and the relay lock
/// it held goes to another replica.
pub const RELAY_IDLE_IN_TRANSACTION: Duration = Duration::from_secs(10);

/// The relay's pool for the database at `url`: one connection (a pass uses
/// one at a time), ending idle transactions after
/// [`RELAY_IDLE_IN_TRANSACTION`].
pub fn relay_pool(url: &str) -> anyhow::Result<PgPool> {
    crate::db::pool_ending_idle_transactions(url, 1, RELAY_IDLE_IN_TRANSACTION)
}

/// Writes `event` to the outbox within the caller's transaction and returns
/// its id. The event is published only if (and once) the transaction commits.
/// It carries the [`trace::current`] trace context, if any, as its
/// `traceparent`.
pub async fn enqueue<E: Event>(conn: &mut PgConnection, event: &E) -> anyhow::Result<Uuid> {
    let row = Row::of(event)?;
    sqlx::query!(
        "INSERT INTO outbox (id, subject, payload, traceparent) VALUES ($1, $2, $3, $4)",
        row.id,
        row.subject,
        row.payload,
        row.traceparent
    )
    .execute(&mut *conn)
    .await
    .context("writing an event to the outbox")?;
    wake();
    Ok(row.id)
}

/// An outbox row, for the one statement that writes both a change and its
/// event (`WITH … INSERT INTO outbox (id, subject, payload, traceparent)`),
/// saving the round trips of a transaction on a hot path. Call [`wake`]
/// once the statement has run. Anywhere else, [`enqueue`] is the way.
#[derive(Debug, Clone)]
pub struct Row {
    /// The event's id, its `Nats-Msg-Id` once published.
    pub id: Uuid,
    /// The event's subject.
    pub subject: &'static str,
    /// The event, as JSON.
    pub payload: serde_json::Value,
    /// The W3C trace context the event carries.
    pub traceparent: Option<String>,
}

impl Row {
    /// The row of `event`, with a fresh id and the [`trace::current`]
    /// trace context, if any.
    pub fn of<E: Event>(event: &E) -> anyhow::Result<Row> {
        Ok(Row {
            id: Uuid::now_v7(),
            subject: E::SUBJECT,
            payload: serde_json::to_value(event).context("serialising an event")?,
            traceparent: trace::current().map(|c| c.child().header()),
        })
    }
}

/// Wakes the relays of this process to publish what was just written.
pub fn wake() {
    WAKE.send_replace(());
}

/// Tuning of the relay.
#[derive(Debug, Clone)]
pub struct RelayOptions {
    /// Rows published per transaction; their acknowledgements are awaited
    /// together. At most [`MAX_BATCH`] are taken.
    pub batch_size: i64,
    /// How often to look for rows without a wake: rows committed by another
    /// process, or long after their wake.
    pub poll_interval: Duration,
    /// The shortest time between the starts of two passes, unless the first
    /// took a whole batch: under a stream of writes, rows gather for this
    /// long and go out together, instead of a pass (five round trips and a
    /// commit) per row.
    pub pass_interval: Duration,
    /// First wait after a failure; doubles up to `max_backoff`.
    pub min_backoff: Duration,
    /// The longest backoff.
    pub max_backoff: Duration,
    /// Published rows older than this are deleted.
    pub retention: Duration,
    /// The publishing service, the `service` label of the relay's metrics.
    /// Empty means the bus's [`Bus::client_name`], which services set to
    /// their own name.
    pub service: String,
}

impl Default for RelayOptions {
    fn default() -> Self {
        Self {
            batch_size: 500,
            poll_interval: Duration::from_secs(1),
            pass_interval: Duration::from_millis(10),
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            retention: Duration::from_secs(24 * 60 * 60),
            service: String::new(),
        }
    }
}

/// Publishes the outbox of one database.
#[derive(Clone)]
pub struct Relay {
    pool: PgPool,
    bus: Bus,
    options: RelayOptions,
}

/// What one pass of the relay did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// This many rows were published.
    Published(usize),
    /// Another replica holds the relay lock.
    Busy,
}

struct Pending {
    id: Uuid,
    subject: String,
    payload: serde_json::Value,
    traceparent: Option<String>,
    created_at: DateTime<Utc>,
}

impl Relay {
    /// A relay for the outbox in `pool`, publishing through `bus`.
    pub fn new(pool: PgPool, bus: Bus, mut options: RelayOptions) -> Self {
        options.batch_size = options.batch_size.clamp(1, MAX_BATCH);
        if options.service.is_empty() {
            options.service = bus.client_name().to_string();
        }
        Self { pool, bus, options }
    }

    /// Names the publishing service in the relay's metrics.
    pub fn service(mut self, service: &str) -> Self {
        self.options.service = service.to_string();
        self
    }

    /// Runs until `shutdown`: publishes whatever is pending, then waits for a
    /// wake from [`enqueue`] or the polling interval; backs off while NATS or
    /// the database fails. A batch in progress is finished before it returns.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut wake = WAKE.subscribe();
        let mut backoff = self.options.min_backoff;
        let mut linger = Linger::default();
        let mut last_cleanup = Instant::now();
        // Streams are (re)declared before the first pass and after any failure:
        // a broker that lost its state gets them back before we publish again.
        let mut streams_ready = false;
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            // Wakes raised from here on ask for another pass.
            wake.borrow_and_update();
            let started = Instant::now();
            let attempt = async {
                if !streams_ready {
                    self.bus.ensure_streams().await?;
                    streams_ready = true;
                }
                self.pass().await
            };
            let failed = match attempt.await {
                Ok(Pass::Published(n)) if n as i64 >= self.options.batch_size => {
                    backoff = self.options.min_backoff;
                    continue;
                }
                Ok(_) => {
                    backoff = self.options.min_backoff;
                    false
                }
                Err(e) => {
                    tracing::warn!(error = format!("{e:#}"), retry_in = ?backoff, "outbox relay failed; retrying");
                    streams_ready = false;
                    true
                }
            };
            if last_cleanup.elapsed() > Duration::from_secs(600) {
                last_cleanup = Instant::now();
                if let Err(e) = self.delete_published().await {
                    tracing::warn!(error = format!("{e:#}"), "could not delete old outbox rows");
                }
            }
            // After a failure, wakes do not cut the backoff short: they would
            // only hammer a broker that is down.
            let pause = async {
                if failed {
                    tokio::time::sleep(backoff).await;
                    return;
                }
                let idle = linger.next().unwrap_or(self.options.poll_interval);
                tokio::select! {
                    woken = wake.changed() => {
                        if woken.is_ok() {
                            linger.woken();
                        }
                    }
                    () = tokio::time::sleep(idle) => {}
                }
                tokio::time::sleep_until(started + self.options.pass_interval).await;
            };
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = pause => {}
            }
            if failed {
                backoff = (backoff * 2).min(self.options.max_backoff);
            }
        }
        tracing::info!("outbox relay stopped");
    }

    /// Publishes up to one batch of pending rows, in order, if this replica
    /// gets the relay lock: sends them all, then awaits the acknowledgements
    /// together. Rows whose acknowledgement arrived are marked published
    /// (and counted in `events_published_total`); the others stay pending and
    /// the first failure is returned after the marking is committed.
    pub async fn pass(&self) -> anyhow::Result<Pass> {
        let mut tx = self
            .pool
            .begin()
            .await
            .context("starting an outbox transaction")?;
        let locked = sqlx::query_scalar!(
            "SELECT pg_try_advisory_xact_lock($1) AS \"locked!\"",
            RELAY_LOCK
        )
        .fetch_one(&mut *tx)
        .await?;
        if !locked {
            return Ok(Pass::Busy);
        }
        let rows = sqlx::query_as!(
            Pending,
            "SELECT id, subject, payload, traceparent, created_at FROM outbox \
             WHERE published_at IS NULL ORDER BY seq LIMIT $1",
            self.options.batch_size
        )
        .fetch_all(&mut *tx)
        .await
        .context("reading pending events")?;

        // Sending stops at the first row that cannot be sent, so nothing
        // after it overtakes it.
        let mut in_flight = Vec::with_capacity(rows.len());
        let mut failure = None;
        let mut previous: Option<String> = None;
        for row in &rows {
            match self.send(row, previous.as_deref()).await {
                Ok(ack) => {
                    in_flight.push((row, ack));
                    previous = Some(row.id.to_string());
                }
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        // Each acknowledgement's timeout starts when it is awaited: awaiting
        // them together bounds a pass by one timeout, not one per row.
        let acks = futures::future::join_all(in_flight.into_iter().map(|(row, ack)| async move {
            let acked = ack
                .await
                .with_context(|| format!("waiting for JetStream to store {}", row.subject));
            (row, acked)
        }))
        .await;
        let mut published = Vec::with_capacity(acks.len());
        for (row, acked) in acks {
            match acked {
                Ok(_) => {
                    published.push(row.id);
                    metrics::counter!(
                        "events_published_total",
                        "service" => self.options.service.clone(),
                        "subject" => row.subject.clone()
                    )
                    .increment(1);
                }
                Err(e) => {
                    failure.get_or_insert(e);
                }
            }
        }
        if !published.is_empty() {
            sqlx::query!(
                "UPDATE outbox SET published_at = now() WHERE id = ANY($1)",
                &published
            )
            .execute(&mut *tx)
            .await
            .context("marking events published")?;
        }
        tx.commit().await.context("committing the outbox pass")?;
        match failure {
            Some(e) => Err(e),
            None => Ok(Pass::Published(published.len())),
        }
    }

    /// Sends one row without waiting for its acknowledgement. A row after
    /// the first of a pass may only be stored right after its predecessor
    /// (`Nats-Expected-Last-Msg-Id`), so a row cannot overtake one the broker
    /// lost; the first row of a pass has no such condition, so a pass always
    /// makes progress.
    async fn send(&self, row: &Pending, after: Option<&str>) -> anyhow::Result<PublishAckFuture> {
        let payload = Bytes::from(serde_json::to_vec(&row.payload)?);
        let enqueued_at = row.created_at.to_rfc3339_opts(SecondsFormat::Micros, true);
        let mut headers = vec![(ENQUEUED_AT, enqueued_at.as_str())];
        if let Some(previous) = after {
            headers.push((EXPECTED_LAST_MSG_ID, previous));
        }
        if let Some(traceparent) = &row.traceparent {
            headers.push((TRACEPARENT, traceparent.as_str()));
        }
        self.bus
            .send_publish(&row.subject, &row.id.to_string(), payload, &headers)
            .await
    }

    async fn delete_published(&self) -> anyhow::Result<()> {
        let retention = i64::try_from(self.options.retention.as_secs())?;
        sqlx::query!(
            "DELETE FROM outbox WHERE published_at < now() - make_interval(secs => $1)",
            retention as f64
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// The relay's looks after a wake: the woken row may commit only after the
/// pass that the wake started, so passes follow at growing intervals
/// ([`LINGER_STEP`]) until [`LINGER`] has passed since the last wake.
#[derive(Default)]
struct Linger {
    since: Option<Instant>,
    step: Duration,
}

impl Linger {
    fn woken(&mut self) {
        self.since = Some(Instant::now());
        self.step = LINGER_STEP.0;
    }

    /// The pause before the next look, or `None` when lingering is over.
    fn next(&mut self) -> Option<Duration> {
        let since = self.since?;
        if since.elapsed() >= LINGER {
            self.since = None;
            return None;
        }
        let step = self.step;
        self.step = (step * 2).min(LINGER_STEP.1);
        Some(step)
    }
}
