use std::time::{Duration, Instant};

use common::events::{ExpirationComplete, Stream};
use common::outbox::{self, Pass, Relay, RelayOptions};
use common::testing::{Fault, FaultProxy, NatsServer, eventually};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::helpers::{Harness, header};

async fn enqueue_committed(h: &Harness, n: usize) -> Vec<Uuid> {
    let mut ids = Vec::new();
    for _ in 0..n {
        let mut tx = h.db.pool.begin().await.expect("begin");
        let event = ExpirationComplete {
            order_id: Uuid::now_v7(),
        };
        ids.push(outbox::enqueue(&mut tx, &event).await.expect("enqueue"));
        tx.commit().await.expect("commit");
    }
    ids
}

/// Waits (at most `wait`) until no outbox row is left to publish.
async fn drained(h: &Harness, wait: Duration) -> bool {
    common::testing::outbox_settled(&h.db.pool, wait).await
}

/// Runs a relay with `options` until the token is cancelled.
fn run_relay(
    h: &Harness,
    options: RelayOptions,
) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let shutdown = CancellationToken::new();
    let task =
        tokio::spawn(Relay::new(h.db.pool.clone(), h.bus.clone(), options).run(shutdown.clone()));
    (shutdown, task)
}

/// Runs a relay that retries quickly while NATS is down, until the token
/// is cancelled.
fn run_relay_with_fast_retries(h: &Harness) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    run_relay(
        h,
        RelayOptions {
            min_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(500),
            ..RelayOptions::default()
        },
    )
}

/// Runs a relay that polls every `poll_interval`, until the token is cancelled.
fn run_relay_polling_every(
    h: &Harness,
    poll_interval: Duration,
) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    run_relay(
        h,
        RelayOptions {
            poll_interval,
            ..RelayOptions::default()
        },
    )
}

fn relay(h: &Harness) -> Relay {
    Relay::new(h.db.pool.clone(), h.bus.clone(), RelayOptions::default())
}

#[tokio::test]
async fn a_committed_event_is_published_with_its_id_as_the_message_id() {
    let h = Harness::new().await;
    h.bus.ensure_streams().await.expect("streams");
    let ids = enqueue_committed(&h, 1).await;

    assert_eq!(relay(&h).pass().await.expect("pass"), Pass::Published(1));

    let messages = h.messages(Stream::Expiration).await;
    assert_eq!(messages.len(), 1);
    assert_eq!(
        header(&messages[0], "Nats-Msg-Id"),
        Some(ids[0].to_string())
    );
    assert_eq!(
        h.bus.unprefixed(messages[0].subject.as_str()),
        "expiration.complete"
    );
    assert_eq!(
        h.count("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            .await,
        0
    );
}

#[tokio::test]
async fn an_event_of_a_rolled_back_transaction_is_never_published() {
    let h = Harness::new().await;
    h.bus.ensure_streams().await.expect("streams");
    let mut tx = h.db.pool.begin().await.expect("begin");
    outbox::enqueue(
        &mut tx,
        &ExpirationComplete {
            order_id: Uuid::now_v7(),
        },
    )
    .await
    .expect("enqueue");
    tx.rollback().await.expect("rollback");

    assert_eq!(relay(&h).pass().await.expect("pass"), Pass::Published(0));
    assert!(h.messages(Stream::Expiration).await.is_empty());
}

#[tokio::test]
async fn events_are_published_in_the_order_they_were_enqueued() {
    let h = Harness::new().await;
    h.bus.ensure_streams().await.expect("streams");
    let ids = enqueue_committed(&h, 250).await;

    let relay = relay(&h);
    while relay.pass().await.expect("pass") != Pass::Published(0) {}

    let published = h.published_ids(Stream::Expiration).await;
    let expected: Vec<String> = ids.iter().map(Uuid::to_string).collect();
    assert_eq!(published, expected);
}

/// Whether the expiration stream holds `n` messages within `wait`.
async fn published_within(h: &Harness, n: usize, wait: Duration) -> bool {
    eventually(wait, || async {
        h.messages(Stream::Expiration).await.len() == n
    })
    .await
}

#[tokio::test]
async fn the_running_relay_publishes_on_enqueue_well_before_the_polling_interval() {
    let h = Harness::new().await;
    h.bus.ensure_streams().await.expect("streams");
    let (shutdown, task) = run_relay_polling_every(&h, Duration::from_secs(60));
    tokio::time::sleep(Duration::from_millis(200)).await;

    enqueue_committed(&h, 1).await;

    let published = published_within(&h, 1, Duration::from_secs(5)).await;
    shutdown.cancel();
    task.await.expect("relay stops");
    assert!(published, "the relay woke up on enqueue");
}

#[tokio::test]
async fn a_row_committed_after_its_wake_is_published_well_before_the_polling_interval() {
    let h = Harness::new().await;
    h.bus.ensure_streams().await.expect("streams");
    let (shutdown, task) = run_relay_polling_every(&h, Duration::from_secs(60));
    tokio::time::sleep(Duration::from_millis(200)).await;

    // The wake comes with the enqueue; the pass it starts finds nothing
    // committed yet, and the relay must keep looking.
    let mut tx = h.db.pool.begin().await.expect("begin");
    let event = ExpirationComplete {
        order_id: Uuid::now_v7(),
    };
    outbox::enqueue(&mut tx, &event).await.expect("enqueue");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(h.messages(Stream::Expiration).await.is_empty());
    tx.commit().await.expect("commit");

    let published = published_within(&h, 1, Duration::from_secs(5)).await;
    shutdown.cancel();
    task.await.expect("relay stops");
    assert!(published, "the relay looked again after the commit");
}

#[tokio::test]
async fn a_row_written_without_a_wake_is_published_at_the_polling_interval() {
    let h = Harness::new().await;
    h.bus.ensure_streams().await.expect("streams");
    let (shutdown, task) = run_relay_polling_every(&h, Duration::from_millis(300));
    tokio::time::sleep(Duration::from_secs(1)).await;

    // As another process would write it: no wake reaches this relay.
    let row = outbox::Row::of(&ExpirationComplete {
        order_id: Uuid::now_v7(),
    })
    .expect("row");
    sqlx::query("INSERT INTO outbox (id, subject, payload) VALUES ($1, $2, $3)")
        .bind(row.id)
        .bind(row.subject)
        .bind(&row.payload)
        .execute(&h.db.pool)
        .await
        .expect("insert");

    let published = published_within(&h, 1, Duration::from_secs(5)).await;
    shutdown.cancel();
    task.await.expect("relay stops");
    assert!(published, "the relay found the row by polling");
}

#[tokio::test]
async fn an_event_enqueued_while_nats_is_down_is_published_once_it_is_back() {
    let mut nats = NatsServer::start();
    let h = Harness::with_nats(&nats.url()).await;
    h.bus.ensure_streams().await.expect("streams");
    let (shutdown, task) = run_relay_with_fast_retries(&h);

    nats.stop();
    let ids = enqueue_committed(&h, 3).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        h.count("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            .await,
        3,
        "nothing can be published while NATS is down"
    );

    nats.resume();
    let all_sent = drained(&h, Duration::from_secs(30)).await;
    shutdown.cancel();
    task.await.expect("relay stops");
    assert!(all_sent, "the relay caught up after NATS came back");

    let published = h.published_ids(Stream::Expiration).await;
    assert_eq!(
        published,
        ids.iter().map(Uuid::to_string).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn two_relays_on_one_database_publish_each_event_exactly_once_and_in_order() {
    let h = Harness::new().await;
    h.bus.ensure_streams().await.expect("streams");
    let ids = enqueue_committed(&h, 300).await;
    let options = RelayOptions {
        batch_size: 10,
        ..RelayOptions::default()
    };

    let replica = |relay: Relay| async move {
        let mut published = 0;
        let mut idle = 0;
        while idle < 20 {
            match relay.pass().await.expect("pass") {
                Pass::Published(0) | Pass::Busy => {
                    idle += 1;
                    tokio::task::yield_now().await;
                }
                Pass::Published(n) => {
                    idle = 0;
                    published += n;
                }
            }
        }
        published
    };
    let a = Relay::new(h.db.pool.clone(), h.bus.clone(), options.clone());
    let b = Relay::new(h.db.pool.clone(), h.bus.clone(), options);
    let (sent_a, sent_b) = tokio::join!(tokio::spawn(replica(a)), tokio::spawn(replica(b)));
    let (sent_a, sent_b) = (sent_a.expect("a"), sent_b.expect("b"));

    assert_eq!(
        sent_a + sent_b,
        300,
        "every row published by exactly one relay ({sent_a} + {sent_b})"
    );
    let published = h.published_ids(Stream::Expiration).await;
    assert_eq!(
        published,
        ids.iter().map(Uuid::to_string).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn stream_set_up_is_idempotent_with_file_storage_and_a_duplicate_window() {
    let h = Harness::new().await;

    h.bus.ensure_streams().await.expect("first set-up");
    h.bus.ensure_streams().await.expect("second set-up");

    for kind in Stream::ALL {
        let mut stream = h
            .bus
            .jetstream()
            .get_stream(h.bus.name(kind.name()))
            .await
            .expect("stream");
        let config = stream.info().await.expect("info").config.clone();
        assert_eq!(
            config.storage,
            async_nats::jetstream::stream::StorageType::File,
            "{}",
            kind.name()
        );
        assert_eq!(config.duplicate_window, common::bus::DUPLICATE_WINDOW);
        assert_eq!(config.subjects, vec![h.bus.subject(kind.subjects())]);
    }
}

#[tokio::test]
async fn the_relay_sets_up_the_streams_itself_before_publishing() {
    let h = Harness::new().await;
    enqueue_committed(&h, 1).await;
    let shutdown = CancellationToken::new();

    let task = tokio::spawn(relay(&h).run(shutdown.clone()));

    let published = drained(&h, Duration::from_secs(10)).await;
    shutdown.cancel();
    task.await.expect("relay stops");
    assert!(published);
    assert_eq!(h.messages(Stream::Expiration).await.len(), 1);
}

#[tokio::test]
async fn concurrent_stream_set_ups_by_separate_replicas_all_succeed() {
    let prefix = common::testing::unique_prefix();
    let mut replicas = Vec::new();
    for _ in 0..8 {
        let settings = common::testing::nats_settings(&prefix);
        replicas.push(
            common::bus::Bus::connect(&settings, "replica")
                .await
                .expect("connect"),
        );
    }

    let results =
        futures::future::join_all(replicas.iter().map(common::bus::Bus::ensure_streams)).await;

    assert!(results.iter().all(Result::is_ok), "{results:?}");
}

/// Enqueues `n` events in one committed transaction, in order.
async fn enqueue_many(h: &Harness, n: usize) -> Vec<Uuid> {
    let mut tx = h.db.pool.begin().await.expect("begin");
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        let event = ExpirationComplete {
            order_id: Uuid::now_v7(),
        };
        ids.push(outbox::enqueue(&mut tx, &event).await.expect("enqueue"));
    }
    tx.commit().await.expect("commit");
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_stopping_in_the_middle_of_batches_publishes_nothing_twice_and_loses_nothing() {
    let mut nats = NatsServer::start();
    let h = Harness::with_nats(&nats.url()).await;
    h.bus.ensure_streams().await.expect("streams");
    let ids = enqueue_many(&h, 5000).await;

    let (shutdown, task) = run_relay_with_fast_retries(&h);
    let started = eventually(Duration::from_secs(10), || async {
        h.count("SELECT count(*) FROM outbox WHERE published_at IS NOT NULL")
            .await
            > 0
    })
    .await;
    nats.stop();
    let published_before_the_stop = h
        .count("SELECT count(*) FROM outbox WHERE published_at IS NOT NULL")
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    nats.resume();
    let all_sent = drained(&h, Duration::from_secs(60)).await;
    shutdown.cancel();
    task.await.expect("relay stops");

    assert!(started, "the relay started publishing");
    assert!(
        published_before_the_stop < ids.len() as i64,
        "NATS stopped before the outbox was drained ({published_before_the_stop} published)"
    );
    assert!(all_sent, "the relay caught up after NATS came back");
    let published = h.published_ids(Stream::Expiration).await;
    let unique: std::collections::HashSet<&String> = published.iter().collect();
    assert_eq!(unique.len(), published.len(), "nothing published twice");
    assert_eq!(
        published,
        ids.iter().map(Uuid::to_string).collect::<Vec<_>>(),
        "everything published, in enqueue order"
    );
}

#[tokio::test]
async fn a_relay_whose_database_hangs_mid_pass_loses_the_relay_lock_to_another_replica() {
    let h = Harness::new().await;
    h.bus.ensure_streams().await.expect("streams");
    // Replica a reaches the database through a proxy and is in the middle
    // of a pass (it holds the relay lock in an open transaction) when its
    // connection hangs.
    let proxy = FaultProxy::in_front_of(&h.db.url).await;
    let hung = outbox::relay_pool(&proxy.route(&h.db.url)).expect("pool");
    let mut pass = hung.begin().await.expect("begin");
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
        .bind(outbox::RELAY_LOCK)
        .fetch_one(&mut *pass)
        .await
        .expect("lock");
    assert!(locked, "replica a holds the relay lock");
    proxy.set(Fault::Hang);
    let hung_at = Instant::now();

    // Replica b's relay, straight to the database.
    let (shutdown, task) = run_relay_polling_every(&h, Duration::from_millis(100));
    enqueue_committed(&h, 1).await;
    let published = published_within(
        &h,
        1,
        outbox::RELAY_IDLE_IN_TRANSACTION + Duration::from_secs(5),
    )
    .await;
    let took = hung_at.elapsed();
    shutdown.cancel();
    task.await.expect("relay stops");
    proxy.set(Fault::Down);
    drop(pass);
    println!("the other replica's relay published {took:?} after the hang");
    assert!(
        published,
        "PostgreSQL ended the hung pass and the lock went to replica b"
    );
    assert!(
        took >= outbox::RELAY_IDLE_IN_TRANSACTION - Duration::from_millis(500),
        "replica b waited for the lock: {took:?}"
    );
}
