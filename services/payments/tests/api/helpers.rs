//! `spawn_app()`: the real payments service on a free port, against a
//! database of its own (migrated by the service's own start-up), a
//! JetStream namespace of its own, and a local stub of Stripe's HTTP API
//! (wiremock) in place of Stripe. Helpers sign users in, seed the orders
//! replica, publish events, answer as Stripe would, and read what the
//! service sent to Stripe and published.

use std::time::Duration;

use async_nats::jetstream::message::StreamMessage;
use common::events::{Event, OrderCancelled, Stream, TicketRef};
use common::testing::{self, TestEnv, eventually};
use payments::config::{Settings, StripeSettings};
use payments::provider::{PaymentProvider, StripeProvider};
use serde_json::{Value, json};
use uuid::Uuid;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

/// How long a test waits for something asynchronous (relay, listeners).
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// The webhook signing secret the service under test is configured with.
pub(crate) const WEBHOOK_SECRET: &str = "whsec_test_secret";

/// The secret key the service sends to the Stripe stub.
pub(crate) const STRIPE_KEY: &str = "sk_test_stub";

/// The currency the service under test charges in; not the default, so
/// that a test can tell the setting is honoured.
pub(crate) const CURRENCY: &str = "eur";

/// The payments service under test, with its database, its namespace's bus
/// and a client (see [`testing::TestApp`]), the Stripe stub it talks to,
/// and the helpers below.
pub(crate) struct TestApp {
    app: testing::TestApp,
    /// Stripe's API, as far as this service uses it.
    pub(crate) stripe: MockServer,
}

impl std::ops::Deref for TestApp {
    type Target = testing::TestApp;
    fn deref(&self) -> &testing::TestApp {
        &self.app
    }
}

/// The service talking to the Stripe stub, with webhooks on.
pub(crate) async fn spawn_app() -> TestApp {
    let stripe = MockServer::start().await;
    let settings = StripeSettings {
        secret_key: Some(STRIPE_KEY.into()),
        api_base: format!("{}/", stripe.uri()),
        currency: CURRENCY.into(),
        webhook_secret: Some(WEBHOOK_SECRET.into()),
    };
    spawn_with(settings, stripe).await
}

/// The service without a Stripe key (the simulated provider) and without a
/// webhook secret.
pub(crate) async fn spawn_simulated_app() -> TestApp {
    let stripe = MockServer::start().await;
    let settings = StripeSettings {
        secret_key: None,
        api_base: format!("{}/", stripe.uri()),
        currency: "usd".into(),
        webhook_secret: None,
    };
    spawn_with(settings, stripe).await
}

async fn spawn_with(stripe_settings: StripeSettings, stripe: MockServer) -> TestApp {
    let env = TestEnv::new("payments-tests").await;
    let settings = Settings {
        common: env.common_settings(),
        database_url: env.db.url.clone(),
        stripe: stripe_settings,
    };
    let app = testing::spawn_app(env, |lifecycle| async move {
        payments::startup::build(&settings, &lifecycle).await
    })
    .await;
    TestApp { app, stripe }
}

/// A signed-in user: stateless sessions need no auth service.
pub(crate) use common::testing::TestUser as User;

impl TestApp {
    pub(crate) async fn get(&self, path: &str) -> reqwest::Response {
        self.client.send_get(path).await
    }

    /// `POST /api/payments` with any JSON body, as `user` (or anonymous).
    pub(crate) async fn post_payment_body(
        &self,
        user: Option<&User>,
        body: &Value,
    ) -> reqwest::Response {
        match user {
            Some(user) => self.client.as_user(user),
            None => self.client.clone(),
        }
        .send_post("/api/payments", body)
        .await
    }

    /// `POST /api/payments {token, orderId}` as `user`.
    pub(crate) async fn pay(&self, user: &User, order_id: Uuid, token: &str) -> reqwest::Response {
        self.post_payment_body(Some(user), &json!({"token": token, "orderId": order_id}))
            .await
    }

    /// Puts an order straight into the replica, as if its order.created had
    /// been applied (version 0, status created); returns its id.
    pub(crate) async fn seed_order(&self, buyer: Uuid, price_cents: i64) -> Uuid {
        self.seed_order_expiring(buyer, price_cents, chrono::Duration::minutes(15))
            .await
    }

    /// As [`TestApp::seed_order`], with its reservation ending `expires_in`
    /// from now (negative: already over).
    pub(crate) async fn seed_order_expiring(
        &self,
        buyer: Uuid,
        price_cents: i64,
        expires_in: chrono::Duration,
    ) -> Uuid {
        let id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO orders (id, user_id, price, status, version, expires_at) \
             VALUES ($1, $2, $3, 'created', 0, now() + $4)",
        )
        .bind(id)
        .bind(buyer)
        .bind(price_cents)
        .bind(expires_in)
        .execute(&self.db.pool)
        .await
        .expect("seed an order");
        id
    }

    /// Publishes `event` onto the service's namespace with a new message id;
    /// returns that id.
    pub(crate) async fn publish<E: Event>(&self, event: &E) -> Uuid {
        testing::publish(&self.bus, event).await
    }

    /// Publishes the cancellation of `order_id` at `version`.
    pub(crate) async fn cancel(&self, order_id: Uuid, version: i64) {
        self.publish(&OrderCancelled {
            id: order_id,
            version,
            ticket: TicketRef { id: Uuid::now_v7() },
        })
        .await;
    }

    /// Every message in `stream`, in stream order.
    pub(crate) async fn messages(&self, stream: Stream) -> Vec<StreamMessage> {
        testing::stream_messages(&self.bus, stream).await
    }

    /// The `E` events the service published, in stream order.
    pub(crate) async fn published<E: Event>(&self) -> Vec<E> {
        testing::published(&self.bus).await
    }

    /// Waits until at least `n` `E` events are in the stream and the outbox
    /// is empty, and returns them.
    pub(crate) async fn wait_for_published<E: Event>(&self, n: usize) -> Vec<E> {
        testing::wait_for_published(&self.bus, &self.db.pool, n, WAIT).await
    }

    pub(crate) async fn count(&self, sql: &'static str) -> i64 {
        self.db.count(sql).await
    }

    /// The (status, stripe id) of every payment of an order, oldest first.
    pub(crate) async fn payments_of(&self, order_id: Uuid) -> Vec<(String, Option<String>)> {
        sqlx::query_as(
            "SELECT status, stripe_id FROM payments WHERE order_id = $1 ORDER BY attempt",
        )
        .bind(order_id)
        .fetch_all(&self.db.pool)
        .await
        .expect("read payments")
    }

    /// The (payment id, provider refund id, reason) of the refunds of an order.
    pub(crate) async fn refunds_of(&self, order_id: Uuid) -> Vec<(Uuid, String, String)> {
        sqlx::query_as(
            "SELECT r.payment_id, r.stripe_id, r.reason FROM refunds r \
             JOIN payments p ON p.id = r.payment_id WHERE p.order_id = $1",
        )
        .bind(order_id)
        .fetch_all(&self.db.pool)
        .await
        .expect("read refunds")
    }

    /// The replica's (status, version) of an order, if any.
    pub(crate) async fn replica(&self, id: Uuid) -> Option<(String, i64)> {
        sqlx::query_as("SELECT status, version FROM orders WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.db.pool)
            .await
            .expect("read the replica")
    }

    /// Waits until the replica holds the order at `status`.
    pub(crate) async fn replica_reaches(&self, id: Uuid, status: &str) -> bool {
        eventually(WAIT, || async {
            self.replica(id).await.is_some_and(|(s, _)| s == status)
        })
        .await
    }

    /// A provider talking to this app's Stripe stub, for calling the
    /// listeners and the reconciler directly.
    pub(crate) fn provider(&self) -> PaymentProvider {
        PaymentProvider::Stripe(
            StripeProvider::new(STRIPE_KEY, &format!("{}/", self.stripe.uri())).expect("client"),
        )
    }

    /// How many deliveries the service's durable consumer of `subject` made.
    pub(crate) async fn deliveries(&self, subject: &str) -> u64 {
        testing::consumer_info(&self.bus, payments::SERVICE, subject)
            .await
            .map(|info| info.delivered.consumer_sequence)
            .unwrap_or_default()
    }
}

// ----- playing Stripe -----

/// A PaymentIntent as Stripe returns it (the fields async-stripe requires,
/// and the ones this service reads).
pub(crate) fn intent(id: &str, amount: i64, status: &str, metadata: Value) -> Value {
    json!({
        "id": id,
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_received": if status == "succeeded" { amount } else { 0 },
        "capture_method": "automatic",
        "confirmation_method": "automatic",
        "created": 1_760_000_000,
        "currency": CURRENCY,
        "livemode": false,
        "metadata": metadata,
        "payment_method_types": ["card"],
        "status": status,
    })
}

/// A new PaymentIntent id.
pub(crate) fn intent_id() -> String {
    format!("pi_test_{}", Uuid::new_v4().simple())
}

/// Stripe's answer to a declined card.
pub(crate) fn card_declined(message: &str) -> ResponseTemplate {
    ResponseTemplate::new(402).set_body_json(json!({"error": {
        "type": "card_error",
        "code": "card_declined",
        "decline_code": "generic_decline",
        "message": message,
    }}))
}

/// Stripe's answer to a successful charge of `amount`.
pub(crate) fn charge_succeeds(intent_id: &str, amount: i64) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(intent(intent_id, amount, "succeeded", json!({})))
}

/// Expects exactly `times` charges, each answered with `response`.
pub(crate) async fn mount_charge(stripe: &MockServer, response: ResponseTemplate, times: u64) {
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .respond_with(response)
        .expect(times)
        .mount(stripe)
        .await;
}

/// Answers refunds as Stripe does, each with a new refund id.
pub(crate) async fn mount_refunds(stripe: &MockServer) {
    Mock::given(method("POST"))
        .and(path("/v1/refunds"))
        .respond_with(|request: &Request| {
            let form = form_of(request);
            ResponseTemplate::new(200).set_body_json(json!({
                "id": format!("re_test_{}", Uuid::new_v4().simple()),
                "object": "refund",
                "amount": 2000,
                "created": 1_760_000_000,
                "currency": CURRENCY,
                "status": "succeeded",
                "payment_intent": form.get("payment_intent"),
            }))
        })
        .mount(stripe)
        .await;
}

/// A request the service sent to the Stripe stub.
pub(crate) struct StripeCall {
    pub(crate) idempotency_key: Option<String>,
    pub(crate) authorization: Option<String>,
    pub(crate) form: std::collections::HashMap<String, String>,
}

impl TestApp {
    /// The requests the service sent to `path` of the Stripe stub, in order.
    pub(crate) async fn stripe_calls(&self, to: &str) -> Vec<StripeCall> {
        self.stripe
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|r| r.url.path() == to)
            .map(|r| StripeCall {
                idempotency_key: header(r, "idempotency-key"),
                authorization: header(r, "authorization"),
                form: form_of(r),
            })
            .collect()
    }
}

fn header(request: &Request, name: &str) -> Option<String> {
    request
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The form-encoded body of a request, decoded.
pub(crate) fn form_of(request: &Request) -> std::collections::HashMap<String, String> {
    String::from_utf8_lossy(&request.body)
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

// ----- playing Stripe's webhooks -----

/// A Stripe event of `kind` about `object`.
pub(crate) fn stripe_event(event_id: &str, kind: &str, object: Value) -> String {
    json!({
        "id": event_id,
        "object": "event",
        "api_version": "2025-10-29.clover",
        "created": 1_760_000_000,
        "livemode": false,
        "pending_webhooks": 1,
        "type": kind,
        "data": {"object": object},
    })
    .to_string()
}

/// A new Stripe event id.
pub(crate) fn event_id() -> String {
    format!("evt_test_{}", Uuid::new_v4().simple())
}

impl TestApp {
    /// Posts `payload` to the webhook with `signature` as `Stripe-Signature`.
    pub(crate) async fn post_webhook(
        &self,
        payload: &str,
        signature: Option<String>,
    ) -> reqwest::Response {
        let request = self
            .client
            .request(reqwest::Method::POST, "/api/payments/webhook")
            .header("Content-Type", "application/json; charset=utf-8")
            .body(payload.to_string());
        let request = match signature {
            Some(s) => request.header("Stripe-Signature", s),
            None => request,
        };
        request.send().await.expect("request")
    }

    /// Posts `payload` signed now with the service's webhook secret, by
    /// async-stripe-webhook's signer (an implementation other than ours).
    pub(crate) async fn send_webhook(&self, payload: &str) -> reqwest::Response {
        let signature =
            stripe_webhook::Webhook::generate_test_header(payload, WEBHOOK_SECRET, None);
        self.post_webhook(payload, Some(signature)).await
    }
}

pub(crate) use common::testing::{error_fields, first_message};
