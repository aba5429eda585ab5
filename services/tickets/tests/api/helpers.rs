//! `spawn_app()`: the real tickets service (routes, outbox relay, listeners)
//! on a free port, against a database of its own (migrated by the service's
//! own start-up) and a JetStream namespace of its own; a bus in that same
//! namespace to publish order events and read what the service published.

use std::time::Duration;

use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::message::StreamMessage;
use bytes::Bytes;
use common::bus::Bus;
use common::events::{
    Event, OrderCancelled, OrderCreated, OrderStatus, OrderTicket, Stream, TicketRef,
};
use common::lifecycle::Lifecycle;
use common::session::CurrentUser;
use common::testing::{self, TestDatabase, TestServer};
use serde_json::{Value, json};
use uuid::Uuid;

/// How long a test waits for something asynchronous (relay, listeners).
pub(crate) const WAIT: Duration = Duration::from_secs(10);

pub(crate) struct TestApp {
    pub(crate) address: String,
    pub(crate) client: reqwest::Client,
    pub(crate) db: TestDatabase,
    pub(crate) bus: Bus,
    _server: TestServer,
}

pub(crate) async fn spawn_app() -> TestApp {
    let db = TestDatabase::create_empty().await;
    let prefix = testing::unique_prefix();
    let bus = Bus::connect(&testing::nats_settings(&prefix), "tickets-tests")
        .await
        .expect("NATS reachable");
    // The streams exist before the test publishes, as in a running system.
    // Created before the service starts, because two concurrent creations
    // of one stream make one of them fail.
    bus.ensure_streams().await.expect("streams");
    let settings = tickets::config::Settings {
        common: testing::common_settings(&prefix),
        database_url: db.url.clone(),
    };
    let lifecycle = Lifecycle::new();
    let service = tickets::startup::build(&settings, &lifecycle)
        .await
        .expect("tickets starts");
    let server = TestServer::start(service.into_app(), lifecycle).await;
    TestApp {
        address: server.address.clone(),
        client: reqwest::Client::new(),
        db,
        bus,
        _server: server,
    }
}

/// A signed-in user and the `Cookie` header value of their session.
pub(crate) fn signed_in() -> (CurrentUser, String) {
    let user = testing::new_user();
    let cookie = testing::session_cookie(&user);
    (user, cookie)
}

impl TestApp {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// `POST /api/tickets`, signed in with `cookie` when given.
    pub(crate) async fn post_ticket(
        &self,
        cookie: Option<&str>,
        body: &Value,
    ) -> reqwest::Response {
        let mut request = self.client.post(self.url("/api/tickets")).json(body);
        if let Some(cookie) = cookie {
            request = request.header("Cookie", cookie);
        }
        request.send().await.expect("request")
    }

    /// `PUT /api/tickets/:id`, signed in with `cookie` when given.
    pub(crate) async fn put_ticket(
        &self,
        cookie: Option<&str>,
        id: &str,
        body: &Value,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .put(self.url(&format!("/api/tickets/{id}")))
            .json(body);
        if let Some(cookie) = cookie {
            request = request.header("Cookie", cookie);
        }
        request.send().await.expect("request")
    }

    pub(crate) async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }

    /// `GET /api/tickets/:id` as JSON; panics unless it is 200.
    pub(crate) async fn ticket(&self, id: Uuid) -> Value {
        let response = self.get(&format!("/api/tickets/{id}")).await;
        assert_eq!(response.status(), reqwest::StatusCode::OK);
        response.json().await.expect("json")
    }

    /// Lists a ticket for sale as `cookie`'s user and returns its id.
    pub(crate) async fn create_ticket(&self, cookie: &str, title: &str, price: f64) -> Uuid {
        let response = self
            .post_ticket(Some(cookie), &json!({"title": title, "price": price}))
            .await;
        assert_eq!(response.status(), reqwest::StatusCode::CREATED);
        let body: Value = response.json().await.expect("json");
        body["id"]
            .as_str()
            .and_then(|id| Uuid::parse_str(id).ok())
            .expect("an id")
    }

    /// Publishes `event` as the orders service would, with a fresh id.
    pub(crate) async fn publish<E: Event>(&self, event: &E) {
        self.bus
            .publish(
                E::SUBJECT,
                Uuid::now_v7(),
                Bytes::from(serde_json::to_vec(event).expect("json")),
                &[],
            )
            .await
            .expect("publish");
    }

    /// Every message in `stream`, in stream order (none while it does not
    /// exist yet).
    pub(crate) async fn messages(&self, stream: Stream) -> Vec<StreamMessage> {
        testing::stream_messages(&self.bus, stream).await
    }

    /// The payloads published on `subject` (unprefixed), in order.
    pub(crate) async fn published(&self, subject: &str) -> Vec<Value> {
        let stream = Stream::of(subject).expect("a stream holds the subject");
        self.messages(stream)
            .await
            .iter()
            .filter(|m| self.bus.unprefixed(m.subject.as_str()) == subject)
            .map(|m| serde_json::from_slice(&m.payload).expect("JSON payload"))
            .collect()
    }

    /// Waits until exactly `count` events were published on `subject`, and
    /// returns them.
    pub(crate) async fn wait_for_published(&self, subject: &str, count: usize) -> Vec<Value> {
        let arrived = testing::eventually(WAIT, || async {
            self.published(subject).await.len() >= count
        })
        .await;
        let events = self.published(subject).await;
        assert!(arrived, "{count} {subject} expected, got {events:?}");
        assert_eq!(events.len(), count, "{events:?}");
        events
    }

    /// Waits until the service's consumer of `subject` has acknowledged
    /// every message published on it so far.
    pub(crate) async fn wait_until_consumed(&self, subject: &str) {
        let consumed = testing::eventually(WAIT, || async {
            self.consumer_info(subject)
                .await
                .is_some_and(|i| i.num_pending == 0 && i.num_ack_pending == 0)
        })
        .await;
        assert!(consumed, "{subject} was not consumed");
    }

    /// The state of the service's durable consumer of `subject`, once it exists.
    pub(crate) async fn consumer_info(
        &self,
        subject: &str,
    ) -> Option<async_nats::jetstream::consumer::Info> {
        let stream = Stream::of(subject)?;
        let stream = self
            .bus
            .jetstream()
            .get_stream(self.bus.name(stream.name()))
            .await
            .ok()?;
        let name = self
            .bus
            .name(&common::listener::consumer_name("tickets", subject));
        let mut consumer: PullConsumer = stream.get_consumer(&name).await.ok()?;
        consumer.info().await.ok().cloned()
    }

    /// Waits until the ticket's `orderId` is `order` (`None`: free).
    pub(crate) async fn wait_for_holder(&self, ticket: Uuid, order: Option<Uuid>) -> Value {
        let expected = order.map_or(Value::Null, |o| json!(o));
        let reached = testing::eventually(WAIT, || async {
            self.ticket(ticket)
                .await
                .get("orderId")
                .cloned()
                .unwrap_or(Value::Null)
                == expected
        })
        .await;
        let body = self.ticket(ticket).await;
        assert!(reached, "expected orderId {expected}, got {body}");
        body
    }
}

/// An order.created for `ticket` as the orders service would publish it.
pub(crate) fn order_created(order: Uuid, ticket: Uuid) -> OrderCreated {
    OrderCreated {
        id: order,
        version: 0,
        status: OrderStatus::Created,
        user_id: Uuid::now_v7(),
        expires_at: chrono::Utc::now() + chrono::Duration::minutes(15),
        ticket: OrderTicket {
            id: ticket,
            price: 2000,
        },
    }
}

/// An order.cancelled of `order`, which held `ticket`.
pub(crate) fn order_cancelled(order: Uuid, ticket: Uuid) -> OrderCancelled {
    OrderCancelled {
        id: order,
        version: 1,
        ticket: TicketRef { id: ticket },
    }
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

/// The `Nats-Msg-Id` header of a stream message.
pub(crate) fn msg_id(m: &StreamMessage) -> Option<String> {
    m.headers.get("Nats-Msg-Id").map(|v| v.as_str().to_string())
}
