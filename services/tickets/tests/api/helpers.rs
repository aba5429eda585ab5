//! `spawn_app()`: the real tickets service (routes, outbox relay, listeners)
//! on a free port, against a database of its own (migrated by the service's
//! own start-up) and a JetStream namespace of its own; a bus in that same
//! namespace to publish order events and read what the service published.

use std::time::Duration;

use async_nats::jetstream::message::StreamMessage;
use common::contract::OrderStatus;
use common::events::{Event, OrderCancelled, OrderCreated, OrderTicket, Stream, TicketRef};
use common::session::CurrentUser;
use common::testing::{self, FaultProxy, TestEnv};
use serde_json::{Value, json};
use uuid::Uuid;

/// How long a test waits for something asynchronous (relay, listeners).
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// The tickets service under test, with its database, its namespace's bus
/// and a client (see [`testing::TestApp`]), and the helpers below.
pub(crate) struct TestApp(testing::TestApp);

impl std::ops::Deref for TestApp {
    type Target = testing::TestApp;
    fn deref(&self) -> &testing::TestApp {
        &self.0
    }
}

pub(crate) async fn spawn_app() -> TestApp {
    let env = TestEnv::new("tickets-tests").await;
    let database_url = env.db.url.clone();
    start(env, database_url, testing::http::REQUEST_TIMEOUT).await
}

/// [`spawn_app`] against the NATS server at `nats_url` (e.g. a test's own
/// [`testing::NatsServer`]).
pub(crate) async fn spawn_app_on(nats_url: &str) -> TestApp {
    let env = TestEnv::on_nats("tickets-tests", nats_url).await;
    let database_url = env.db.url.clone();
    start(env, database_url, testing::http::REQUEST_TIMEOUT).await
}

/// The service reaching its database through a [`FaultProxy`], which the
/// test then uses to take the database away and bring it back.
pub(crate) async fn spawn_app_behind_proxy() -> (TestApp, FaultProxy) {
    spawn_app_behind_proxy_answering_within(testing::http::REQUEST_TIMEOUT).await
}

/// [`spawn_app_behind_proxy`], answering 503 after `request_timeout`.
pub(crate) async fn spawn_app_behind_proxy_answering_within(
    request_timeout: Duration,
) -> (TestApp, FaultProxy) {
    let env = TestEnv::new("tickets-tests").await;
    let proxy = FaultProxy::in_front_of(&env.db.url).await;
    let database_url = proxy.route(&env.db.url);
    (start(env, database_url, request_timeout).await, proxy)
}

async fn start(env: TestEnv, database_url: String, request_timeout: Duration) -> TestApp {
    let settings = tickets::config::Settings {
        common: env.common_settings(),
        database_url,
    };
    TestApp(
        testing::http::spawn_app_with_request_timeout(
            env,
            request_timeout,
            |lifecycle| async move { tickets::startup::build(&settings, &lifecycle).await },
        )
        .await,
    )
}

/// A signed-in user and the `Cookie` header value of their session.
pub(crate) fn signed_in() -> (CurrentUser, String) {
    let user = testing::new_user();
    let cookie = testing::session_cookie(&user);
    (user, cookie)
}

impl TestApp {
    /// `POST /api/tickets`, signed in with `cookie` when given.
    pub(crate) async fn post_ticket(
        &self,
        cookie: Option<&str>,
        body: &Value,
    ) -> reqwest::Response {
        self.send(reqwest::Method::POST, "/api/tickets", cookie, body)
            .await
    }

    /// `PUT /api/tickets/:id`, signed in with `cookie` when given.
    pub(crate) async fn put_ticket(
        &self,
        cookie: Option<&str>,
        id: &str,
        body: &Value,
    ) -> reqwest::Response {
        self.send(
            reqwest::Method::PUT,
            &format!("/api/tickets/{id}"),
            cookie,
            body,
        )
        .await
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        cookie: Option<&str>,
        body: &Value,
    ) -> reqwest::Response {
        let mut request = self.client.request(method, path).json(body);
        if let Some(cookie) = cookie {
            request = request.header("Cookie", cookie);
        }
        request.send().await.expect("request")
    }

    pub(crate) async fn get(&self, path: &str) -> reqwest::Response {
        self.client.send_get(path).await
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
        testing::publish(&self.bus, event).await;
    }

    /// Every message in `stream`, in stream order (none while it does not
    /// exist yet).
    pub(crate) async fn messages(&self, stream: Stream) -> Vec<StreamMessage> {
        testing::stream_messages(&self.bus, stream).await
    }

    /// The payloads published on `subject` (unprefixed), in order.
    pub(crate) async fn published(&self, subject: &str) -> Vec<Value> {
        testing::published_json(&self.bus, subject).await
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
        let consumed = testing::consumed(&self.bus, tickets::SERVICE, subject, WAIT).await;
        assert!(consumed, "{subject} was not consumed");
    }

    /// The state of the service's durable consumer of `subject`, once it exists.
    pub(crate) async fn consumer_info(
        &self,
        subject: &str,
    ) -> Option<async_nats::jetstream::consumer::Info> {
        testing::consumer_info(&self.bus, tickets::SERVICE, subject).await
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

pub(crate) use common::testing::{error_fields, msg_id};
