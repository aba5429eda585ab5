//! A database and a JetStream namespace of the test's own, and readers for
//! what reached the streams.

use std::time::Duration;

use async_nats::jetstream::message::StreamMessage;
use common::bus::Bus;
use common::events::Stream;
use common::listener::ListenerOptions;
use common::testing::{self, TestDatabase};
use sqlx::migrate::Migrator;

static TEST_MIGRATIONS: Migrator = sqlx::migrate!("./tests/bus/migrations");

pub(crate) struct Harness {
    pub(crate) db: TestDatabase,
    pub(crate) bus: Bus,
}

impl Harness {
    pub(crate) async fn new() -> Harness {
        Self::with_nats(&testing::nats_url()).await
    }

    pub(crate) async fn with_nats(url: &str) -> Harness {
        let db = TestDatabase::create(&TEST_MIGRATIONS).await;
        let mut settings = testing::nats_settings(&testing::unique_prefix());
        settings.url = url.to_string();
        let bus = Bus::connect(&settings, "bus-tests")
            .await
            .expect("NATS reachable");
        Harness { db, bus }
    }

    /// Every message in `stream`, in stream order.
    pub(crate) async fn messages(&self, stream: Stream) -> Vec<StreamMessage> {
        testing::stream_messages(&self.bus, stream).await
    }

    /// The `Nats-Msg-Id`s in `stream`, in stream order.
    pub(crate) async fn published_ids(&self, stream: Stream) -> Vec<String> {
        self.messages(stream)
            .await
            .iter()
            .filter_map(|m| header(m, "Nats-Msg-Id"))
            .collect()
    }

    pub(crate) async fn count(&self, sql: &'static str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(&self.db.pool)
            .await
            .expect("count")
    }
}

/// Retry timings short enough for tests.
pub(crate) fn fast_options() -> ListenerOptions {
    ListenerOptions {
        max_deliver: 4,
        max_not_yet: 200,
        not_yet_delay: Duration::from_millis(50),
        min_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(200),
        ack_wait: Duration::from_secs(5),
        ..ListenerOptions::default()
    }
}

pub(crate) fn header(m: &StreamMessage, name: &str) -> Option<String> {
    m.headers.get(name).map(|v| v.as_str().to_string())
}
