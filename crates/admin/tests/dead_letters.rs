//! The dead-letter round trip against the real NATS and PostgreSQL: a
//! handler with a bug dead-letters an event; once the handler is fixed, the
//! admin tool replays it and it is applied exactly once, even when the
//! replay reaches a consumer that had applied it already.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use admin::{DeadLetters, Filter};
use common::bus::Bus;
use common::events::ExpirationComplete;
use common::listener::{self, Delivery, Listener, ListenerOptions, Outcome};
use common::testing::{self, TestDatabase, eventually};
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use uuid::Uuid;

/// The listeners' background tasks, stopped at the end of a test.
type Stop = common::lifecycle::Lifecycle;

/// Applies `expiration.complete` once per event id (the inbox), but fails
/// every delivery while `broken` is set: a handler with a bug.
#[derive(Clone)]
struct Handler {
    pool: PgPool,
    consumer: &'static str,
    broken: Arc<AtomicBool>,
    applied: Arc<AtomicU64>,
}

impl Handler {
    fn new(pool: &PgPool, consumer: &'static str, broken: bool) -> Handler {
        Handler {
            pool: pool.clone(),
            consumer,
            broken: Arc::new(AtomicBool::new(broken)),
            applied: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl Listener for Handler {
    type Event = ExpirationComplete;

    async fn handle(&self, delivery: Delivery<ExpirationComplete>) -> anyhow::Result<Outcome> {
        if self.broken.load(Ordering::SeqCst) {
            anyhow::bail!("the handler has a bug");
        }
        let mut tx = self.pool.begin().await?;
        if !common::inbox::first_delivery(&mut tx, self.consumer, delivery.id).await? {
            return Ok(Outcome::Duplicate);
        }
        tx.commit().await?;
        self.applied.fetch_add(1, Ordering::SeqCst);
        Ok(Outcome::Applied)
    }
}

fn options() -> ListenerOptions {
    ListenerOptions {
        max_deliver: 3,
        min_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(100),
        ..ListenerOptions::default()
    }
}

fn start(bus: &Bus, service: &str, handler: Handler, stop: &Stop) {
    let (bus, service) = (bus.clone(), service.to_string());
    stop.spawn(|shutdown| listener::run(bus, service, handler, options(), shutdown));
}

async fn bus() -> Bus {
    let settings = testing::nats_settings(&testing::unique_prefix());
    let bus = Bus::connect(&settings, "admin-tests")
        .await
        .expect("NATS reachable");
    bus.ensure_streams().await.expect("streams");
    bus
}

async fn inbox_rows(pool: &PgPool, consumer: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM inbox WHERE consumer = $1")
        .bind(consumer)
        .fetch_one(pool)
        .await
        .expect("count")
}

#[tokio::test]
async fn a_poison_event_is_dead_lettered_and_once_the_handler_is_fixed_a_replay_applies_it_once() {
    let bus = bus().await;
    let db = TestDatabase::create(&Migrator::DEFAULT).await;
    let stop = Stop::new();
    // "buggy" has the bug; "healthy", another service on the same subject,
    // applies the event the first time.
    let buggy = Handler::new(&db.pool, "buggy", true);
    let healthy = Handler::new(&db.pool, "healthy", false);
    start(&bus, "buggy", buggy.clone(), &stop);
    start(&bus, "healthy", healthy.clone(), &stop);
    let event = ExpirationComplete {
        order_id: Uuid::now_v7(),
    };
    let event_id = testing::publish(&bus, &event).await;

    let letters = DeadLetters::open(bus.clone()).await.expect("open");
    let dead = eventually(Duration::from_secs(10), || async {
        letters.list(&Filter::default()).await.expect("list").len() == 1
    })
    .await;
    assert!(dead, "dead-lettered after its attempts");
    let listed = letters.list(&Filter::default()).await.expect("list");
    let letter = &listed[0];
    assert_eq!(letter.service, "buggy");
    assert_eq!(letter.subject, "expiration.complete");
    assert_eq!(letter.attempts, Some(3));
    assert!(
        letter.reason.contains("the handler has a bug"),
        "{}",
        letter.reason
    );
    assert_eq!(letter.event_id, Some(event_id));
    assert!(letter.age(chrono::Utc::now()) < Duration::from_secs(10));
    let shown = letters.get(letter.sequence).await.expect("show");
    let payload: ExpirationComplete = serde_json::from_slice(&shown.payload).expect("payload");
    assert_eq!(payload.order_id, event.order_id);
    assert_eq!(healthy.applied.load(Ordering::SeqCst), 1);

    buggy.broken.store(false, Ordering::SeqCst);
    let message_id = letters.replay(letter).await.expect("replay");
    assert_ne!(message_id, event_id, "a new message id");

    let applied = eventually(Duration::from_secs(10), || async {
        buggy.applied.load(Ordering::SeqCst) == 1
    })
    .await;
    assert!(applied, "the fixed handler applied the replay");
    assert!(
        testing::consumed(
            &bus,
            "healthy",
            "expiration.complete",
            Duration::from_secs(10)
        )
        .await,
        "the other service received the replay too"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(buggy.applied.load(Ordering::SeqCst), 1, "applied once");
    assert_eq!(
        healthy.applied.load(Ordering::SeqCst),
        1,
        "a duplicate for the service that had applied it"
    );
    assert_eq!(inbox_rows(&db.pool, "buggy").await, 1);
    assert_eq!(inbox_rows(&db.pool, "healthy").await, 1);
    assert!(
        letters
            .list(&Filter::default())
            .await
            .expect("list")
            .is_empty(),
        "the replayed letter is gone"
    );
    stop.shutdown.cancel();
}

#[tokio::test]
async fn dead_letters_are_replayed_or_discarded_by_subject() {
    let bus = bus().await;
    let db = TestDatabase::create(&Migrator::DEFAULT).await;
    let stop = Stop::new();
    let buggy = Handler::new(&db.pool, "buggy", true);
    start(&bus, "buggy", buggy.clone(), &stop);
    for _ in 0..3 {
        testing::publish(
            &bus,
            &ExpirationComplete {
                order_id: Uuid::now_v7(),
            },
        )
        .await;
    }
    let letters = DeadLetters::open(bus.clone()).await.expect("open");
    let all = Filter {
        subject: Some("expiration.complete".into()),
        service: None,
    };
    let dead = eventually(Duration::from_secs(10), || async {
        letters.list(&all).await.expect("list").len() == 3
    })
    .await;
    assert!(dead, "three dead letters");
    let other = Filter {
        subject: Some("ticket.updated".into()),
        service: None,
    };
    assert!(letters.list(&other).await.expect("list").is_empty());

    let listed = letters.list(&all).await.expect("list");
    letters.discard(listed[0].sequence).await.expect("discard");
    assert!(letters.get(listed[0].sequence).await.is_err(), "gone");
    buggy.broken.store(false, Ordering::SeqCst);
    for letter in &listed[1..] {
        letters.replay(letter).await.expect("replay");
    }
    let applied = eventually(Duration::from_secs(10), || async {
        buggy.applied.load(Ordering::SeqCst) == 2
    })
    .await;
    assert!(applied, "both replays applied");
    assert!(letters.list(&all).await.expect("list").is_empty());
    stop.shutdown.cancel();
}
