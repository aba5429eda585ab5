//! `spawn_app()`: the real orders service on a free port, against a database
//! of its own (migrated by the service's own start-up) and a JetStream
//! namespace of its own, with helpers to sign users in, seed the tickets
//! replica, publish events, and read what the service published.

use std::time::Duration;

use async_nats::jetstream::message::StreamMessage;
use common::events::{Event, Stream};
use common::testing::{self, TestClient, TestEnv, eventually};
use orders::config::SweepSettings;
use serde_json::{Value, json};
use uuid::Uuid;

/// The reservation length the service under test is configured with; not
/// the default, so that a test can tell the setting is honoured.
pub(crate) const ORDER_EXPIRATION: Duration = Duration::from_secs(120);

/// How long a test waits for something asynchronous (relay, listeners).
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// The orders service under test, with its database, its namespace's bus
/// and a client (see [`testing::TestApp`]), and the helpers below.
pub(crate) struct TestApp(testing::TestApp);

impl std::ops::Deref for TestApp {
    type Target = testing::TestApp;
    fn deref(&self) -> &testing::TestApp {
        &self.0
    }
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
    let env = TestEnv::new("orders-tests").await;
    let settings = orders::config::Settings {
        common: env.common_settings(),
        database_url: env.db.url.clone(),
        order_expiration,
        sweep,
    };
    TestApp(
        testing::spawn_app(env, |lifecycle| async move {
            orders::startup::build(&settings, &lifecycle).await
        })
        .await,
    )
}

/// A signed-in user: stateless sessions need no auth service.
pub(crate) use common::testing::TestUser as User;

impl TestApp {
    /// The client, signed in as `user` when given.
    fn client_of(&self, user: Option<&User>) -> TestClient {
        match user {
            Some(user) => self.client.as_user(user),
            None => self.client.clone(),
        }
    }

    pub(crate) async fn post_order_body(
        &self,
        user: Option<&User>,
        body: &Value,
    ) -> reqwest::Response {
        self.client_of(user).send_post("/api/orders", body).await
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
        self.client_of(user).send_get(path).await
    }

    pub(crate) async fn delete(&self, path: &str, user: Option<&User>) -> reqwest::Response {
        self.client_of(user).send_delete(path).await
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
        testing::publish(&self.bus, event).await
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
        self.db.count(sql).await
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

pub(crate) use common::testing::{error_fields, first_message};

impl TestApp {
    /// How many deliveries (first ones and redeliveries) the service's
    /// durable consumer of `subject` has made.
    pub(crate) async fn deliveries(&self, subject: &str) -> u64 {
        testing::consumer_info(&self.bus, orders::SERVICE, subject)
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
