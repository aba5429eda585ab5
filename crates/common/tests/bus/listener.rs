use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use common::events::{
    Event, ExpirationComplete, Stream, TicketCreated, TicketSnapshot, TicketUpdated,
};
use common::inbox;
use common::listener::{self, Delivery, Listener, ListenerOptions, Outcome};
use common::testing::eventually;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::helpers::{Harness, fast_options, header};

/// Applies expiration.complete once per order, de-duplicated by the inbox.
/// Fails its first `fail_before_commit` attempts (rolling back), and on the
/// first `fail_after_commit` attempts commits and then reports an error, as
/// if the ack had been lost.
#[derive(Clone)]
struct Effects {
    pool: PgPool,
    name: &'static str,
    fail_before_commit: u64,
    fail_after_commit: u64,
    attempts: Arc<AtomicU64>,
    work: Duration,
}

impl Effects {
    fn new(pool: &PgPool, name: &'static str) -> Self {
        Self {
            pool: pool.clone(),
            name,
            fail_before_commit: 0,
            fail_after_commit: 0,
            attempts: Arc::new(AtomicU64::new(0)),
            work: Duration::ZERO,
        }
    }
}

impl Listener for Effects {
    type Event = ExpirationComplete;

    async fn handle(&self, delivery: Delivery<ExpirationComplete>) -> anyhow::Result<Outcome> {
        let attempt = self.attempts.fetch_add(1, Ordering::SeqCst) + 1;
        let mut tx = self.pool.begin().await?;
        if !inbox::first_delivery(&mut tx, "tests", delivery.id).await? {
            return Ok(Outcome::Duplicate);
        }
        tokio::time::sleep(self.work).await;
        sqlx::query("INSERT INTO effects (order_id, handled_by) VALUES ($1, $2)")
            .bind(delivery.event.order_id)
            .bind(self.name)
            .execute(&mut *tx)
            .await?;
        if attempt <= self.fail_before_commit {
            anyhow::bail!("simulated failure before commit");
        }
        tx.commit().await?;
        if attempt <= self.fail_after_commit {
            anyhow::bail!("simulated failure after commit");
        }
        Ok(Outcome::Applied)
    }
}

/// A versioned replica of tickets, as the orders service keeps one.
#[derive(Clone)]
struct ReplicaCreated(PgPool);
#[derive(Clone)]
struct ReplicaUpdated(PgPool);

impl Listener for ReplicaCreated {
    type Event = TicketCreated;
    async fn handle(&self, d: Delivery<TicketCreated>) -> anyhow::Result<Outcome> {
        let t = d.event.0;
        let mut tx = self.0.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO replica (id, version, price) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(t.id)
        .bind(t.version)
        .bind(t.price)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            return Ok(Outcome::Duplicate);
        }
        log_version(&mut tx, t.id, t.version).await?;
        tx.commit().await?;
        Ok(Outcome::Applied)
    }
}

impl Listener for ReplicaUpdated {
    type Event = TicketUpdated;
    async fn handle(&self, d: Delivery<TicketUpdated>) -> anyhow::Result<Outcome> {
        let t = d.event.0;
        let mut tx = self.0.begin().await?;
        let updated = sqlx::query(
            "UPDATE replica SET version = $2, price = $3 WHERE id = $1 AND version = $2 - 1",
        )
        .bind(t.id)
        .bind(t.version)
        .bind(t.price)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 1 {
            log_version(&mut tx, t.id, t.version).await?;
            tx.commit().await?;
            return Ok(Outcome::Applied);
        }
        let current: Option<i64> = sqlx::query_scalar("SELECT version FROM replica WHERE id = $1")
            .bind(t.id)
            .fetch_optional(&mut *tx)
            .await?;
        Ok(match current {
            Some(v) if v >= t.version => Outcome::Duplicate,
            _ => Outcome::NotYet,
        })
    }
}

async fn log_version(conn: &mut sqlx::PgConnection, id: Uuid, version: i64) -> anyhow::Result<()> {
    sqlx::query("INSERT INTO applied_versions (id, version) VALUES ($1, $2)")
        .bind(id)
        .bind(version)
        .execute(conn)
        .await?;
    Ok(())
}

async fn publish<E: Event>(h: &Harness, event: &E) -> Uuid {
    let id = Uuid::now_v7();
    publish_raw(
        h,
        E::SUBJECT,
        id,
        Bytes::from(serde_json::to_vec(event).expect("json")),
    )
    .await;
    id
}

/// Publishes an expiration of a new order and returns the event id.
async fn publish_expiration(h: &Harness) -> Uuid {
    publish(
        h,
        &ExpirationComplete {
            order_id: Uuid::now_v7(),
        },
    )
    .await
}

async fn publish_raw(h: &Harness, subject: &str, id: Uuid, payload: Bytes) {
    h.bus
        .publish(subject, id, payload, &[])
        .await
        .expect("publish");
}

struct Running {
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

impl Running {
    fn new() -> Self {
        Self {
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
        }
    }

    fn start<L: Listener>(&self, h: &Harness, listener: L, options: ListenerOptions) {
        self.start_as(h, "tests", listener, options);
    }

    fn start_as<L: Listener>(
        &self,
        h: &Harness,
        service: &str,
        listener: L,
        options: ListenerOptions,
    ) {
        self.tasks.spawn(listener::run(
            h.bus.clone(),
            service.to_string(),
            listener,
            options,
            self.shutdown.clone(),
        ));
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.tasks.close();
        tokio::time::timeout(Duration::from_secs(10), self.tasks.wait())
            .await
            .expect("listeners stop on shutdown");
    }
}

fn snapshot(id: Uuid, version: i64, price: i64) -> TicketSnapshot {
    TicketSnapshot {
        id,
        version,
        title: "Concert".into(),
        price,
        user_id: Uuid::nil(),
        order_id: None,
        details: Default::default(),
    }
}

#[tokio::test]
async fn a_failing_handler_is_redelivered_and_its_effect_applied_exactly_once() {
    let h = Harness::new().await;
    h.bus.ensure_streams().await.expect("streams");
    let handler = Effects {
        fail_before_commit: 2,
        ..Effects::new(&h.db.pool, "a")
    };
    let attempts = handler.attempts.clone();
    let running = Running::new();
    running.start(&h, handler, fast_options());

    publish_expiration(&h).await;

    let done = eventually(Duration::from_secs(15), || async {
        attempts.load(Ordering::SeqCst) >= 3
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    running.stop().await;
    assert!(done, "redelivered after failures");
    assert_eq!(
        attempts.load(Ordering::SeqCst),
        3,
        "two failures, then one success, then no more"
    );
    assert_eq!(h.count("SELECT count(*) FROM effects").await, 1);
}

#[tokio::test]
async fn a_redelivered_event_whose_effect_committed_is_applied_once() {
    let h = Harness::new().await;
    h.bus.ensure_streams().await.expect("streams");
    let handler = Effects {
        fail_after_commit: 1,
        ..Effects::new(&h.db.pool, "a")
    };
    let attempts = handler.attempts.clone();
    let running = Running::new();
    running.start(&h, handler, fast_options());

    publish_expiration(&h).await;

    let redelivered = eventually(Duration::from_secs(15), || async {
        attempts.load(Ordering::SeqCst) >= 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    running.stop().await;
    assert!(redelivered);
    assert_eq!(attempts.load(Ordering::SeqCst), 2);
    assert_eq!(h.count("SELECT count(*) FROM effects").await, 1);
    assert_eq!(h.count("SELECT count(*) FROM inbox").await, 1);
}

#[tokio::test]
async fn two_replicas_on_one_consumer_never_both_process_an_event() {
    let h = Harness::new().await;
    h.bus.ensure_streams().await.expect("streams");
    let a = Effects {
        work: Duration::from_millis(2),
        ..Effects::new(&h.db.pool, "a")
    };
    let b = Effects {
        work: Duration::from_millis(2),
        ..Effects::new(&h.db.pool, "b")
    };
    let (attempts_a, attempts_b) = (a.attempts.clone(), b.attempts.clone());
    let running = Running::new();
    running.start(&h, a, fast_options());
    running.start(&h, b, fast_options());

    for _ in 0..200 {
        publish_expiration(&h).await;
    }

    let all = eventually(Duration::from_secs(30), || async {
        h.count("SELECT count(*) FROM effects").await == 200
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    running.stop().await;
    assert!(all, "all 200 events handled");
    let (by_a, by_b) = (
        attempts_a.load(Ordering::SeqCst),
        attempts_b.load(Ordering::SeqCst),
    );
    assert_eq!(
        by_a + by_b,
        200,
        "each event delivered to exactly one replica ({by_a} + {by_b})"
    );
    assert!(
        by_a > 0 && by_b > 0,
        "both replicas took work ({by_a} / {by_b})"
    );
    assert_eq!(h.count("SELECT count(*) FROM inbox").await, 200);
}

#[tokio::test]
async fn a_duplicate_and_an_early_version_are_applied_once_and_in_order() {
    let h = Harness::new().await;
    h.bus.ensure_streams().await.expect("streams");
    let running = Running::new();
    running.start(&h, ReplicaCreated(h.db.pool.clone()), fast_options());
    running.start(&h, ReplicaUpdated(h.db.pool.clone()), fast_options());
    let id = Uuid::now_v7();

    publish(&h, &TicketCreated(snapshot(id, 0, 500))).await;
    publish(&h, &TicketUpdated(snapshot(id, 2, 1500))).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let early = h.count("SELECT max(version) FROM replica").await;
    publish(&h, &TicketUpdated(snapshot(id, 1, 1000))).await;
    publish(&h, &TicketUpdated(snapshot(id, 1, 1000))).await;

    let settled = eventually(Duration::from_secs(15), || async {
        h.count("SELECT count(*) FROM applied_versions").await == 3
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    running.stop().await;
    assert_eq!(early, 0, "version 2 waited for version 1");
    assert!(settled);
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM applied_versions ORDER BY seq")
            .fetch_all(&h.db.pool)
            .await
            .expect("versions");
    assert_eq!(versions, vec![0, 1, 2]);
    let (version, price): (i64, i64) =
        sqlx::query_as("SELECT version, price FROM replica WHERE id = $1")
            .bind(id)
            .fetch_one(&h.db.pool)
            .await
            .expect("replica row");
    assert_eq!((version, price), (2, 1500));
}

#[tokio::test]
async fn an_undecodable_message_is_terminated_and_dead_lettered_without_blocking_the_next() {
    let h = Harness::new().await;
    h.bus.ensure_streams().await.expect("streams");
    let handler = Effects::new(&h.db.pool, "a");
    let attempts = handler.attempts.clone();
    let running = Running::new();
    running.start(&h, handler, fast_options());

    let poison = Uuid::now_v7();
    publish_raw(
        &h,
        ExpirationComplete::SUBJECT,
        poison,
        Bytes::from_static(b"{not json"),
    )
    .await;
    publish_expiration(&h).await;

    let dead = eventually(Duration::from_secs(10), || async {
        h.messages(Stream::DeadLetter).await.len() == 1
    })
    .await;
    let next_done = eventually(Duration::from_secs(10), || async {
        h.count("SELECT count(*) FROM effects").await == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    running.stop().await;
    assert!(dead && next_done);
    assert_eq!(
        attempts.load(Ordering::SeqCst),
        1,
        "the poison message never reached the handler"
    );
    let letters = h.messages(Stream::DeadLetter).await;
    assert_eq!(letters.len(), 1, "terminated, not redelivered");
    assert_eq!(
        h.bus.unprefixed(letters[0].subject.as_str()),
        "deadletter.tests.expiration.complete"
    );
    assert_eq!(
        header(&letters[0], "Original-Msg-Id"),
        Some(poison.to_string())
    );
    assert!(
        header(&letters[0], "Dead-Letter-Reason").is_some_and(|r| r.starts_with("undecodable"))
    );
    assert_eq!(&letters[0].payload[..], b"{not json");
}

#[tokio::test]
async fn a_message_that_keeps_failing_goes_to_the_dead_letter_subject_with_the_reason() {
    let h = Harness::new().await;
    h.bus.ensure_streams().await.expect("streams");
    let handler = Effects {
        fail_before_commit: u64::MAX,
        ..Effects::new(&h.db.pool, "a")
    };
    let attempts = handler.attempts.clone();
    let running = Running::new();
    running.start(&h, handler, fast_options());

    publish_expiration(&h).await;

    let dead = eventually(Duration::from_secs(15), || async {
        h.messages(Stream::DeadLetter).await.len() == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    running.stop().await;
    assert!(dead);
    assert_eq!(
        attempts.load(Ordering::SeqCst),
        fast_options().max_deliver,
        "no delivery after max_deliver"
    );
    let letters = h.messages(Stream::DeadLetter).await;
    let reason = header(&letters[0], "Dead-Letter-Reason").unwrap_or_default();
    assert!(
        reason.contains("simulated failure before commit"),
        "{reason}"
    );
    assert_eq!(h.count("SELECT count(*) FROM effects").await, 0);
}

/// Records, per ticket, the versions in the order they were handled, and
/// how many deliveries were being handled at once at most. It does not
/// check versions itself: any reordering by the runtime shows.
#[derive(Clone, Default)]
struct OrderRecorder {
    seen: Arc<std::sync::Mutex<std::collections::HashMap<Uuid, Vec<i64>>>>,
    in_flight: Arc<AtomicU64>,
    most_in_flight: Arc<AtomicU64>,
}

impl Listener for OrderRecorder {
    type Event = TicketUpdated;
    async fn handle(&self, d: Delivery<TicketUpdated>) -> anyhow::Result<Outcome> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_in_flight.fetch_max(now, Ordering::SeqCst);
        // Uneven work, so that a later version would overtake an earlier one
        // if two versions of one ticket were ever handled at the same time.
        let jitter = (d.id.as_u128() % 7) as u64;
        tokio::time::sleep(Duration::from_millis(1 + jitter)).await;
        self.seen
            .lock()
            .expect("not poisoned")
            .entry(d.event.0.id)
            .or_default()
            .push(d.event.0.version);
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        Ok(Outcome::Applied)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_of_many_tickets_are_handled_concurrently_yet_in_order_per_ticket() {
    let h = Harness::new().await;
    h.bus.ensure_streams().await.expect("streams");
    const TICKETS: usize = 40;
    const VERSIONS: i64 = 6;
    let tickets: Vec<Uuid> = (0..TICKETS).map(|_| Uuid::now_v7()).collect();
    for version in 0..VERSIONS {
        for id in &tickets {
            publish(&h, &TicketUpdated(snapshot(*id, version, 100))).await;
        }
    }
    let recorder = OrderRecorder::default();
    let running = Running::new();

    running.start(&h, recorder.clone(), fast_options());

    let total = TICKETS * VERSIONS as usize;
    let all = eventually(Duration::from_secs(30), || async {
        recorder
            .seen
            .lock()
            .expect("not poisoned")
            .values()
            .map(Vec::len)
            .sum::<usize>()
            == total
    })
    .await;
    running.stop().await;
    assert!(all, "every version handled");
    let seen = recorder.seen.lock().expect("not poisoned").clone();
    let in_order: Vec<i64> = (0..VERSIONS).collect();
    for id in &tickets {
        assert_eq!(seen.get(id), Some(&in_order), "ticket {id}");
    }
    let most = recorder.most_in_flight.load(Ordering::SeqCst);
    assert!(most > 1, "deliveries overlapped ({most} at most)");
}

/// Refuses every event as permanently unprocessable.
#[derive(Clone, Default)]
struct Refuser {
    attempts: Arc<AtomicU64>,
}

impl Listener for Refuser {
    type Event = ExpirationComplete;
    async fn handle(&self, _: Delivery<ExpirationComplete>) -> anyhow::Result<Outcome> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        Ok(Outcome::Reject(
            "the order belongs to another market".into(),
        ))
    }
}

#[tokio::test]
async fn a_rejected_event_is_dead_lettered_at_once_with_the_reason() {
    let h = Harness::new().await;
    h.bus.ensure_streams().await.expect("streams");
    let handler = Refuser::default();
    let attempts = handler.attempts.clone();
    let running = Running::new();
    running.start(&h, handler, fast_options());

    let id = publish_expiration(&h).await;

    let dead = eventually(Duration::from_secs(10), || async {
        h.messages(Stream::DeadLetter).await.len() == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    running.stop().await;
    assert!(dead, "dead-lettered");
    assert_eq!(attempts.load(Ordering::SeqCst), 1, "never retried");
    let letters = h.messages(Stream::DeadLetter).await;
    assert_eq!(letters.len(), 1);
    assert_eq!(header(&letters[0], "Original-Msg-Id"), Some(id.to_string()));
    assert_eq!(
        header(&letters[0], "Dead-Letter-Reason").as_deref(),
        Some("rejected: the order belongs to another market")
    );
}

#[tokio::test]
async fn a_handler_slower_than_the_ack_wait_is_not_redelivered_and_applies_once() {
    let h = Harness::new().await;
    h.bus.ensure_streams().await.expect("streams");
    let handler = Effects {
        work: Duration::from_secs(3),
        ..Effects::new(&h.db.pool, "a")
    };
    let attempts = handler.attempts.clone();
    let options = ListenerOptions {
        ack_wait: Duration::from_secs(1),
        ..fast_options()
    };
    let running = Running::new();
    running.start(&h, handler, options);

    publish_expiration(&h).await;

    let applied = eventually(Duration::from_secs(10), || async {
        h.count("SELECT count(*) FROM effects").await == 1
    })
    .await;
    // Long enough for a redelivery to have shown up, had one happened.
    tokio::time::sleep(Duration::from_secs(2)).await;
    running.stop().await;
    assert!(applied);
    assert_eq!(
        attempts.load(Ordering::SeqCst),
        1,
        "delivered once despite taking three ack waits"
    );
}

/// Takes every event and never finishes with it: a replica that hangs.
#[derive(Clone, Default)]
struct Hanging {
    entered: Arc<AtomicU64>,
}

impl Listener for Hanging {
    type Event = ExpirationComplete;
    async fn handle(&self, _: Delivery<ExpirationComplete>) -> anyhow::Result<Outcome> {
        self.entered.fetch_add(1, Ordering::SeqCst);
        std::future::pending().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_held_by_a_killed_replica_are_applied_by_another_within_five_seconds() {
    let h = Harness::new().await;
    h.bus.ensure_streams().await.expect("streams");
    let hanging = Hanging::default();
    let entered = hanging.entered.clone();
    let doomed = tokio::spawn(listener::run(
        h.bus.clone(),
        "tests".to_string(),
        hanging,
        ListenerOptions::default(),
        CancellationToken::new(),
    ));
    for _ in 0..5 {
        publish_expiration(&h).await;
    }
    let holding = eventually(Duration::from_secs(10), || async {
        entered.load(Ordering::SeqCst) >= 1
    })
    .await;
    assert!(holding, "the first replica took the events");
    // Let it keep them past a few in-progress signals, so the server has
    // been told it is working on them.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let survivor = Effects::new(&h.db.pool, "survivor");
    let running = Running::new();
    running.start(&h, survivor, ListenerOptions::default());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        h.count("SELECT count(*) FROM effects").await,
        0,
        "the live replica held them"
    );

    doomed.abort();
    let killed = std::time::Instant::now();
    let all = eventually(Duration::from_secs(15), || async {
        h.count("SELECT count(*) FROM effects").await == 5
    })
    .await;
    let recovered_in = killed.elapsed();
    running.stop().await;
    println!("events of the killed replica applied {recovered_in:?} after the kill");
    assert!(all, "the other replica applied all five");
    assert!(
        recovered_in < Duration::from_secs(5),
        "applied within 5 s ({recovered_in:?})"
    );
}

#[tokio::test]
async fn a_consumer_made_with_an_older_ack_wait_is_brought_to_the_current_one() {
    let h = Harness::new().await;
    h.bus.ensure_streams().await.expect("streams");
    let durable = h.bus.name(&listener::consumer_name(
        "tests",
        ExpirationComplete::SUBJECT,
    ));
    let stream = h
        .bus
        .jetstream()
        .get_stream(h.bus.name(Stream::Expiration.name()))
        .await
        .expect("stream");
    stream
        .create_consumer(async_nats::jetstream::consumer::pull::Config {
            durable_name: Some(durable.clone()),
            filter_subject: h.bus.subject(ExpirationComplete::SUBJECT),
            ack_policy: async_nats::jetstream::consumer::AckPolicy::Explicit,
            ack_wait: Duration::from_secs(30),
            max_deliver: -1,
            max_ack_pending: 1000,
            ..Default::default()
        })
        .await
        .expect("old consumer");
    let running = Running::new();

    running.start(
        &h,
        Effects::new(&h.db.pool, "a"),
        ListenerOptions::default(),
    );

    let ack_wait = || async {
        stream
            .consumer_info(&durable)
            .await
            .expect("consumer info")
            .config
            .ack_wait
    };
    let converged = eventually(Duration::from_secs(10), || async {
        ack_wait().await == ListenerOptions::default().ack_wait
    })
    .await;
    running.stop().await;
    assert!(converged, "ack wait is {:?}", ack_wait().await);
}

/// Records the trace context it handles under, and enqueues a follow-up
/// event, as a service's listener would.
#[derive(Clone)]
struct TraceRecorder {
    pool: PgPool,
    seen: Arc<std::sync::Mutex<Option<common::trace::TraceContext>>>,
}

impl Listener for TraceRecorder {
    type Event = ExpirationComplete;
    async fn handle(&self, d: Delivery<ExpirationComplete>) -> anyhow::Result<Outcome> {
        *self.seen.lock().expect("not poisoned") = common::trace::current();
        let mut tx = self.pool.begin().await?;
        let follow_up = common::events::PaymentCreated {
            id: Uuid::now_v7(),
            order_id: d.event.order_id,
            stripe_id: "pi_trace".into(),
        };
        common::outbox::enqueue(&mut tx, &follow_up).await?;
        tx.commit().await?;
        Ok(Outcome::Applied)
    }
}

#[tokio::test]
async fn the_trace_id_travels_from_the_enqueuing_request_to_the_handler_and_its_events() {
    let h = Harness::new().await;
    h.bus.ensure_streams().await.expect("streams");
    let request = common::trace::TraceContext::new_root();
    common::trace::scope(request, async {
        let mut tx = h.db.pool.begin().await.expect("begin");
        common::outbox::enqueue(
            &mut tx,
            &ExpirationComplete {
                order_id: Uuid::now_v7(),
            },
        )
        .await
        .expect("enqueue");
        tx.commit().await.expect("commit");
    })
    .await;
    let relay = common::outbox::Relay::new(
        h.db.pool.clone(),
        h.bus.clone(),
        common::outbox::RelayOptions::default(),
    );
    relay.pass().await.expect("published");
    let recorder = TraceRecorder {
        pool: h.db.pool.clone(),
        seen: Arc::default(),
    };
    let seen = recorder.seen.clone();
    let running = Running::new();

    running.start(&h, recorder, fast_options());

    let handled = eventually(Duration::from_secs(10), || async {
        seen.lock().expect("not poisoned").is_some()
    })
    .await;
    running.stop().await;
    assert!(handled);
    let message = &h.messages(Stream::Expiration).await[0];
    let sent = header(message, "traceparent").expect("a traceparent header");
    assert_eq!(
        common::trace::TraceContext::parse(&sent).map(|c| c.trace_id()),
        Some(request.trace_id())
    );
    assert!(
        header(message, common::outbox::ENQUEUED_AT)
            .is_some_and(|t| chrono::DateTime::parse_from_rfc3339(&t).is_ok()),
        "the enqueue time travels too"
    );
    let handled_under = seen.lock().expect("not poisoned").expect("a context");
    assert_eq!(handled_under.trace_id(), request.trace_id());
    let follow_up: Option<String> =
        sqlx::query_scalar("SELECT traceparent FROM outbox WHERE subject = 'payment.created'")
            .fetch_one(&h.db.pool)
            .await
            .expect("the follow-up row");
    assert_eq!(
        follow_up
            .as_deref()
            .and_then(common::trace::TraceContext::parse)
            .map(|c| c.trace_id()),
        Some(request.trace_id()),
        "what the handler enqueued continues the trace"
    );
}

/// The value of the metric `name` whose labels include `labels`.
fn metric<'a>(
    snapshot: &'a [(
        metrics_util::CompositeKey,
        Option<metrics::Unit>,
        Option<metrics::SharedString>,
        metrics_util::debugging::DebugValue,
    )],
    name: &str,
    labels: &[(&str, &str)],
) -> Option<&'a metrics_util::debugging::DebugValue> {
    snapshot
        .iter()
        .find(|(key, ..)| {
            key.key().name() == name
                && labels.iter().all(|(k, v)| {
                    key.key()
                        .labels()
                        .any(|label| label.key() == *k && label.value() == *v)
                })
        })
        .map(|(.., value)| value)
}

#[tokio::test]
async fn the_pipeline_counts_what_it_publishes_handles_and_dead_letters() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().expect("the only recorder of this test");
    let h = Harness::new().await;
    h.bus.ensure_streams().await.expect("streams");
    let mut tx = h.db.pool.begin().await.expect("begin");
    for _ in 0..3 {
        let event = ExpirationComplete {
            order_id: Uuid::now_v7(),
        };
        common::outbox::enqueue(&mut tx, &event)
            .await
            .expect("enqueue");
    }
    tx.commit().await.expect("commit");
    let relay = common::outbox::Relay::new(
        h.db.pool.clone(),
        h.bus.clone(),
        common::outbox::RelayOptions::default(),
    )
    .service("metered");
    assert_eq!(
        relay.pass().await.expect("published"),
        common::outbox::Pass::Published(3)
    );
    publish_raw(
        &h,
        ExpirationComplete::SUBJECT,
        Uuid::now_v7(),
        Bytes::from_static(b"{not json"),
    )
    .await;
    let running = Running::new();

    running.start_as(&h, "metered", Effects::new(&h.db.pool, "a"), fast_options());

    let settled = eventually(Duration::from_secs(10), || async {
        h.count("SELECT count(*) FROM effects").await == 3
            && h.messages(Stream::DeadLetter).await.len() == 1
    })
    .await;
    running.stop().await;
    assert!(settled);
    let snapshot = snapshotter.snapshot().into_vec();
    let of = |name: &str, extra: &[(&str, &str)]| {
        let mut labels = vec![("service", "metered"), ("subject", "expiration.complete")];
        labels.extend_from_slice(extra);
        metric(&snapshot, name, &labels)
    };
    assert_eq!(
        of("events_published_total", &[]),
        Some(&DebugValue::Counter(3))
    );
    assert_eq!(
        of("events_handled_total", &[("outcome", "applied")]),
        Some(&DebugValue::Counter(3))
    );
    assert_eq!(
        of("events_handled_total", &[("outcome", "undecodable")]),
        Some(&DebugValue::Counter(1))
    );
    assert_eq!(
        of("events_dead_lettered_total", &[]),
        Some(&DebugValue::Counter(1))
    );
    assert!(
        matches!(of("event_lag_seconds", &[]), Some(DebugValue::Histogram(lags))
            if lags.len() == 3 && lags.iter().all(|l| l.into_inner() >= 0.0)),
        "one lag per applied event"
    );
    assert!(
        matches!(
            of("consumer_pending_messages", &[]),
            Some(DebugValue::Gauge(_))
        ),
        "the pending count is reported"
    );
    assert_eq!(of("events_redelivered_total", &[]), None, "no redelivery");
}

/// A listener that takes the events queued in a lane in batches. It records,
/// per ticket, the versions in the order they were applied and the size of
/// every batch. Lenient, it applies whatever comes (a reordering by the
/// runtime shows); strict, it applies v only on top of v − 1, as a versioned
/// replica does. With `fail_first`, its first batch fails as a whole.
#[derive(Clone, Default)]
struct BatchRecorder {
    strict: bool,
    fail_first: Arc<std::sync::atomic::AtomicBool>,
    seen: Arc<std::sync::Mutex<std::collections::HashMap<Uuid, Vec<i64>>>>,
    batches: Arc<std::sync::Mutex<Vec<usize>>>,
}

impl BatchRecorder {
    fn apply(&self, ticket: &TicketSnapshot) -> Outcome {
        let mut seen = self.seen.lock().expect("not poisoned");
        let versions = seen.entry(ticket.id).or_default();
        let last = versions.last().copied();
        if self.strict && last.is_some_and(|v| v >= ticket.version) {
            return Outcome::Duplicate;
        }
        if self.strict && last.map_or(ticket.version != 0, |v| v + 1 != ticket.version) {
            return Outcome::NotYet;
        }
        versions.push(ticket.version);
        Outcome::Applied
    }

    fn applied(&self) -> usize {
        self.seen
            .lock()
            .expect("not poisoned")
            .values()
            .map(Vec::len)
            .sum()
    }
}

impl Listener for BatchRecorder {
    type Event = TicketUpdated;

    async fn handle(&self, d: Delivery<TicketUpdated>) -> anyhow::Result<Outcome> {
        self.batches.lock().expect("not poisoned").push(1);
        Ok(self.apply(&d.event.0))
    }

    const BATCHES: bool = true;

    async fn handle_batch(
        &self,
        deliveries: Vec<Delivery<TicketUpdated>>,
    ) -> anyhow::Result<Vec<Outcome>> {
        if self.fail_first.swap(false, Ordering::SeqCst) {
            anyhow::bail!("simulated failure of a whole batch");
        }
        self.batches
            .lock()
            .expect("not poisoned")
            .push(deliveries.len());
        tokio::time::sleep(Duration::from_millis(2)).await;
        Ok(deliveries.iter().map(|d| self.apply(&d.event.0)).collect())
    }
}

/// Publishes versions 0..`versions` of `tickets` new tickets, version by
/// version, so that each lane finds a backlog.
async fn publish_versions(h: &Harness, tickets: usize, versions: i64) -> Vec<Uuid> {
    let ids: Vec<Uuid> = (0..tickets).map(|_| Uuid::now_v7()).collect();
    for version in 0..versions {
        for id in &ids {
            publish(h, &TicketUpdated(snapshot(*id, version, 100))).await;
        }
    }
    ids
}

fn start_batching(h: &Harness, running: &Running, listener: BatchRecorder, batch: usize) {
    running.tasks.spawn(listener::run(
        h.bus.clone().with_listener_batch(batch),
        "tests".to_string(),
        listener,
        fast_options(),
        running.shutdown.clone(),
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_events_of_a_lane_are_applied_in_batches_in_order_per_ticket() {
    let h = Harness::new().await;
    h.bus.ensure_streams().await.expect("streams");
    let ids = publish_versions(&h, 40, 6).await;
    let recorder = BatchRecorder::default();
    let running = Running::new();

    start_batching(&h, &running, recorder.clone(), 8);

    let all = eventually(Duration::from_secs(30), || async {
        recorder.applied() == 240
    })
    .await;
    running.stop().await;
    assert!(all, "every version handled ({} of 240)", recorder.applied());
    let seen = recorder.seen.lock().expect("not poisoned").clone();
    for id in &ids {
        assert_eq!(
            seen.get(id),
            Some(&(0..6).collect::<Vec<i64>>()),
            "ticket {id}"
        );
    }
    let batches = recorder.batches.lock().expect("not poisoned").clone();
    let largest = batches.iter().copied().max().unwrap_or_default();
    assert!(
        largest > 1,
        "queued events were batched (batches: {batches:?})"
    );
    assert!(
        largest <= 8,
        "no batch is larger than the bus allows (batches: {batches:?})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_that_fails_as_a_whole_is_redelivered_and_each_event_applied_once() {
    let h = Harness::new().await;
    h.bus.ensure_streams().await.expect("streams");
    let ids = publish_versions(&h, 20, 4).await;
    let recorder = BatchRecorder {
        strict: true,
        fail_first: Arc::new(std::sync::atomic::AtomicBool::new(true)),
        ..BatchRecorder::default()
    };
    let running = Running::new();

    start_batching(&h, &running, recorder.clone(), 16);

    let all = eventually(Duration::from_secs(30), || async {
        recorder.applied() == 80
    })
    .await;
    running.stop().await;
    assert!(all, "every version applied ({} of 80)", recorder.applied());
    assert!(
        !recorder.fail_first.load(Ordering::SeqCst),
        "a batch failed"
    );
    let seen = recorder.seen.lock().expect("not poisoned").clone();
    for id in &ids {
        assert_eq!(
            seen.get(id),
            Some(&(0..4).collect::<Vec<i64>>()),
            "ticket {id}"
        );
    }
    let consumer = common::testing::consumer_info(&h.bus, "tests", TicketUpdated::SUBJECT)
        .await
        .expect("consumer");
    assert_eq!(consumer.num_ack_pending, 0, "every delivery settled");
}
