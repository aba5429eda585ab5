//! `spawn_app()`: the real orders service on a free port, against a database
//! of its own (migrated by the service's own start-up) and a JetStream
//! namespace of its own, with helpers to sign users in, seed the tickets
//! replica, publish events, and read what the service published.

use std::time::Duration;

use async_nats::jetstream::message::StreamMessage;
use bytes::Bytes;
use common::bus::Bus;
use common::events::{Event, Stream};
use common::lifecycle::Lifecycle;
use common::testing::{self, TestDatabase, TestServer, eventually};
use orders::config::SweepSettings;
use serde_json::{Value, json};
use uuid::Uuid;

/// The reservation length the service under test is configured with; not
/// the default, so that a test can tell the setting is honoured.
pub(crate) const ORDER_EXPIRATION: Duration = Duration::from_secs(120);

/// How long a test waits for something asynchronous (relay, listeners).
pub(crate) const WAIT: Duration = Duration::from_secs(10);

pub(crate) struct TestApp {
    pub(crate) address: String,
    pub(crate) client: reqwest::Client,
    pub(crate) db: TestDatabase,
    /// A connection to the service's JetStream namespace.
    pub(crate) bus: Bus,
    _server: TestServer,
}

/// Sweeps that never run within a test, unless a test asks for them.
pub(crate) const NO_SWEEP: SweepSettings = SweepSettings {
    grace: Duration::from_secs(60),
    interval: Duration::from_secs(3600),
};

pub(crate) async fn spawn_app() -> TestApp {
    spawn_app_with(ORDER_EXPIRATION, NO_SWEEP).await
}

/// The service with its own reservation length and sweep settings.
pub(crate) async fn spawn_app_with(order_expiration: Duration, sweep: SweepSettings) -> TestApp {
    let db = TestDatabase::create_empty().await;
    let prefix = testing::unique_prefix();
    let settings = orders::config::Settings {
        common: testing::common_settings(&prefix),
        database_url: db.url.clone(),
        order_expiration,
        sweep,
    };
    // The streams exist before a test publishes to them or reads them,
    // whichever of the test and the service gets to NATS first.
    let bus = Bus::connect(&settings.common.nats, "orders-tests")
        .await
        .expect("NATS reachable");
    bus.ensure_streams().await.expect("streams");
    let lifecycle = Lifecycle::new();
    let service = orders::startup::build(&settings, &lifecycle)
        .await
        .expect("orders starts");
    let server = TestServer::start(service.into_app(), lifecycle).await;
    TestApp {
        address: server.address.clone(),
        client: reqwest::Client::new(),
        db,
        bus,
        _server: server,
    }
}

/// A signed-in user: stateless sessions need no auth service.
pub(crate) use common::testing::TestUser as User;

impl TestApp {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        user: Option<&User>,
    ) -> reqwest::RequestBuilder {
        let request = self.client.request(method, self.url(path));
        match user {
            Some(user) => request.header("Cookie", &user.cookie),
            None => request,
        }
    }

    pub(crate) async fn post_order_body(
        &self,
        user: Option<&User>,
        body: &Value,
    ) -> reqwest::Response {
        self.request(reqwest::Method::POST, "/api/orders", user)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// `POST /api/orders {ticketId}` as `user`.
    pub(crate) async fn post_order(&self, user: &User, ticket_id: Uuid) -> reqwest::Response {
        self.post_order_body(Some(user), &json!({"ticketId": ticket_id}))
            .await
    }

    /// Reserves `ticket_id` for `user`, which must succeed; the new order's id.
    pub(crate) async fn create_order(&self, user: &User, ticket_id: Uuid) -> Uuid {
        let response = self.post_order(user, ticket_id).await;
        assert_eq!(response.status(), reqwest::StatusCode::CREATED);
        let body: Value = response.json().await.expect("json");
        body["id"]
            .as_str()
            .and_then(|id| Uuid::parse_str(id).ok())
            .expect("an order id")
    }

    pub(crate) async fn get(&self, path: &str, user: Option<&User>) -> reqwest::Response {
        self.request(reqwest::Method::GET, path, user)
            .send()
            .await
            .expect("request")
    }

    pub(crate) async fn delete(&self, path: &str, user: Option<&User>) -> reqwest::Response {
        self.request(reqwest::Method::DELETE, path, user)
            .send()
            .await
            .expect("request")
    }

    /// Puts a ticket straight into the replica, as if its ticket.created had
    /// been applied; returns its id.
    pub(crate) async fn seed_ticket(&self, seller: Uuid, title: &str, price_cents: i64) -> Uuid {
        let id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO tickets (id, title, price, user_id, version) VALUES ($1, $2, $3, $4, 0)",
        )
        .bind(id)
        .bind(title)
        .bind(price_cents)
        .bind(seller)
        .execute(&self.db.pool)
        .await
        .expect("seed a ticket");
        id
    }

    /// A ticket for sale by somebody else than any test user.
    pub(crate) async fn ticket(&self) -> Uuid {
        self.seed_ticket(Uuid::now_v7(), "Concert", 2000).await
    }

    /// Publishes `event` onto the service's namespace with a new message id;
    /// returns that id.
    pub(crate) async fn publish<E: Event>(&self, event: &E) -> Uuid {
        let id = Uuid::now_v7();
        let payload = Bytes::from(serde_json::to_vec(event).expect("json"));
        self.bus
            .publish(E::SUBJECT, id, payload, &[])
            .await
            .expect("publish");
        id
    }

    /// Every message in `stream`, in stream order.
    pub(crate) async fn messages(&self, stream: Stream) -> Vec<StreamMessage> {
        testing::stream_messages(&self.bus, stream).await
    }

    /// Waits until at least `n` `E` events are in the stream and the outbox
    /// is empty, and returns them.
    pub(crate) async fn wait_for_published<E: Event>(&self, n: usize) -> Vec<E> {
        testing::wait_for_published(&self.bus, &self.db.pool, n, WAIT).await
    }

    pub(crate) async fn count(&self, sql: &'static str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(&self.db.pool)
            .await
            .expect("count")
    }

    /// An order's status and version, read from the database.
    pub(crate) async fn order_row(&self, id: Uuid) -> (String, i64) {
        sqlx::query_as("SELECT status, version FROM orders WHERE id = $1")
            .bind(id)
            .fetch_one(&self.db.pool)
            .await
            .expect("the order exists")
    }

    /// Waits until the order has `status`.
    pub(crate) async fn order_reaches(&self, id: Uuid, status: &str) -> bool {
        eventually(WAIT, || async { self.order_row(id).await.0 == status }).await
    }

    /// Sets an order's status directly, as a test's starting point.
    pub(crate) async fn force_status(&self, id: Uuid, status: &str) {
        sqlx::query("UPDATE orders SET status = $2, version = version + 1 WHERE id = $1")
            .bind(id)
            .bind(status)
            .execute(&self.db.pool)
            .await
            .expect("set status");
    }

    /// How many events the service consumed through the inbox.
    pub(crate) async fn inbox_rows(&self) -> i64 {
        self.count("SELECT count(*) FROM inbox").await
    }
}

/// An error body's first message.
pub(crate) fn first_message(body: &Value) -> &str {
    body["errors"][0]["message"].as_str().unwrap_or_default()
}

/// The `field` values of an error body, in order.
pub(crate) fn error_fields(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .filter_map(|e| e["field"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

impl TestApp {
    /// How many deliveries (first ones and redeliveries) the service's
    /// durable consumer of `subject` has made.
    pub(crate) async fn deliveries(&self, subject: &str) -> u64 {
        let stream = Stream::of(subject).expect("a stream holds the subject");
        let stream = self
            .bus
            .jetstream()
            .get_stream(self.bus.name(stream.name()))
            .await
            .expect("stream exists");
        let consumer = self
            .bus
            .name(&common::listener::consumer_name(orders::SERVICE, subject));
        stream
            .consumer_info(consumer)
            .await
            .map(|info| info.delivered.consumer_sequence)
            .unwrap_or_default()
    }

    /// The replica's (version, title, price in cents) of a ticket, if any.
    pub(crate) async fn replica(&self, id: Uuid) -> Option<(i64, String, i64)> {
        sqlx::query_as("SELECT version, title, price FROM tickets WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.db.pool)
            .await
            .expect("read the replica")
    }

    /// Waits until the replica holds `version` of a ticket.
    pub(crate) async fn replica_reaches(&self, id: Uuid, version: i64) -> bool {
        eventually(WAIT, || async {
            self.replica(id).await.is_some_and(|(v, _, _)| v == version)
        })
        .await
    }
}
