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
        self.tasks.spawn(listener::run(
            h.bus.clone(),
            "tests".to_string(),
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

    publish(
        &h,
        &ExpirationComplete {
            order_id: Uuid::now_v7(),
        },
    )
    .await;

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

    publish(
        &h,
        &ExpirationComplete {
            order_id: Uuid::now_v7(),
        },
    )
    .await;

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
        publish(
            &h,
            &ExpirationComplete {
                order_id: Uuid::now_v7(),
            },
        )
        .await;
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
    publish(
        &h,
        &ExpirationComplete {
            order_id: Uuid::now_v7(),
        },
    )
    .await;

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

    publish(
        &h,
        &ExpirationComplete {
            order_id: Uuid::now_v7(),
        },
    )
    .await;

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
