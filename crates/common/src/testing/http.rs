//! Serving a service under test and talking to it: [`spawn_app`] starts the
//! real router on a free port in a [`TestEnv`] of its own, and
//! [`TestClient`] calls it like a browser would (cookies kept), asserting
//! the status and decoding the body in one step.

use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::lifecycle::{Lifecycle, Service};
use crate::testing::TestUser;
use crate::testing::bus::TestEnv;

/// A service served on a free local port until dropped.
pub struct TestServer {
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    /// The served service's lifecycle; dropping the server cancels it.
    pub lifecycle: Lifecycle,
}

impl TestServer {
    /// Serves `app` (a finished router) with `lifecycle` on 127.0.0.1:0.
    pub async fn start(app: axum::Router, lifecycle: Lifecycle) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = format!("http://{}", listener.local_addr().expect("addr"));
        let serving = lifecycle.clone();
        tokio::spawn(async move {
            if let Err(e) = serving.serve(listener, app, Duration::from_secs(5)).await {
                tracing::error!(error = %e, "test server failed");
            }
        });
        TestServer { address, lifecycle }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.lifecycle.shutdown.cancel();
    }
}

/// One service under test: the real router served on a free port, in its
/// own database and JetStream namespace, with a client for it.
pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    /// A cookie-keeping client of the service.
    pub client: TestClient,
    /// The service's database.
    pub db: crate::testing::TestDatabase,
    /// A connection to the service's JetStream namespace, streams declared.
    pub bus: crate::bus::Bus,
    /// The namespace's prefix.
    pub prefix: String,
    server: TestServer,
}

impl TestApp {
    /// The absolute URL of `path` on the service.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// Waits (at most `within`) until `/readyz` answers 200 with every
    /// check passing (`"status": "ready"`, not degraded), and returns its
    /// body's `checks`; panics when it never does.
    pub async fn ready_checks(&self, within: Duration) -> Value {
        let ready = crate::testing::eventually(within, || async {
            readiness(&self.address).await == (StatusCode::OK, "ready".to_string())
        })
        .await;
        assert!(ready, "/readyz did not say ready within {within:?}");
        let body: Value = self.client.get("/readyz", StatusCode::OK).await;
        body["checks"].clone()
    }

    /// The served service's lifecycle (to stop it mid-test).
    pub fn lifecycle(&self) -> &Lifecycle {
        &self.server.lifecycle
    }
}

/// `GET <address>/readyz`: its status and the `status` its body gives
/// (`ready`, `degraded` or `unavailable`; empty when there is none).
pub async fn readiness(address: &str) -> (StatusCode, String) {
    let Ok(response) = reqwest::get(format!("{address}/readyz")).await else {
        return (StatusCode::BAD_GATEWAY, String::new());
    };
    let status = response.status();
    let body: Value = response.json().await.unwrap_or_default();
    (
        status,
        body["status"].as_str().unwrap_or_default().to_string(),
    )
}

/// The request timeout of services under test: tests share a loaded machine,
/// where a burst of password hashes can take longer than the deployed 30 s
/// without anything being stuck.
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// The one `spawn_app` of every service's tests: `build` (the service's own
/// `startup::build`, with settings made from `env`) runs on a new
/// lifecycle, and the service it returns is served on a free port with the
/// shared middleware, as a deployed process serves it (but with
/// [`REQUEST_TIMEOUT`]).
pub async fn spawn_app<F, Fut>(env: TestEnv, build: F) -> TestApp
where
    F: FnOnce(Lifecycle) -> Fut,
    Fut: Future<Output = anyhow::Result<Service>>,
{
    spawn_app_with_request_timeout(env, REQUEST_TIMEOUT, build).await
}

/// [`spawn_app`], answering 503 after `request_timeout` (a drill of a
/// database that stops answering).
pub async fn spawn_app_with_request_timeout<F, Fut>(
    env: TestEnv,
    request_timeout: std::time::Duration,
    build: F,
) -> TestApp
where
    F: FnOnce(Lifecycle) -> Fut,
    Fut: Future<Output = anyhow::Result<Service>>,
{
    crate::testing::init_test_logs();
    let lifecycle = Lifecycle::new();
    let service = build(lifecycle.clone()).await.expect("the service starts");
    let server = TestServer::start(service.into_app_with_timeout(request_timeout), lifecycle).await;
    TestApp {
        address: server.address.clone(),
        client: TestClient::new(&server.address),
        db: env.db,
        bus: env.bus,
        prefix: env.prefix,
        server,
    }
}

/// An HTTP client of one service that keeps cookies like a browser, and
/// may carry a signed-in user's session. The typed calls assert the status
/// and decode the body: `client.post::<_, Value>("/api/tickets", &body,
/// StatusCode::CREATED)`; the `send_*` calls return the raw response for
/// tests about the response itself.
#[derive(Clone)]
pub struct TestClient {
    base: String,
    http: reqwest::Client,
    cookie: Option<String>,
}

impl TestClient {
    /// A client of the service at `base` (`http://host:port`).
    pub fn new(base: &str) -> TestClient {
        TestClient {
            base: base.to_string(),
            http: reqwest::Client::builder()
                .cookie_store(true)
                .build()
                .expect("an HTTP client"),
            cookie: None,
        }
    }

    /// The same client, sending `user`'s session cookie on every request.
    pub fn as_user(&self, user: &TestUser) -> TestClient {
        TestClient {
            cookie: Some(user.cookie.clone()),
            ..self.clone()
        }
    }

    /// The absolute URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request to `path`, with the session cookie if the client has one.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let request = self.http.request(method, self.url(path));
        match &self.cookie {
            Some(cookie) => request.header(reqwest::header::COOKIE, cookie),
            None => request,
        }
    }

    /// `GET path`, the raw response.
    pub async fn send_get(&self, path: &str) -> Response {
        send(self.request(Method::GET, path)).await
    }

    /// `POST path` with a JSON body, the raw response.
    pub async fn send_post<I: Serialize + ?Sized>(&self, path: &str, body: &I) -> Response {
        send(self.request(Method::POST, path).json(body)).await
    }

    /// `PUT path` with a JSON body, the raw response.
    pub async fn send_put<I: Serialize + ?Sized>(&self, path: &str, body: &I) -> Response {
        send(self.request(Method::PUT, path).json(body)).await
    }

    /// `DELETE path`, the raw response.
    pub async fn send_delete(&self, path: &str) -> Response {
        send(self.request(Method::DELETE, path)).await
    }

    /// `GET path`, asserting `expected` and decoding the body as `O`.
    pub async fn get<O: DeserializeOwned>(&self, path: &str, expected: StatusCode) -> O {
        expect(self.send_get(path).await, expected).await
    }

    /// `POST path` with `body`, asserting `expected` and decoding the body.
    pub async fn post<I: Serialize + ?Sized, O: DeserializeOwned>(
        &self,
        path: &str,
        body: &I,
        expected: StatusCode,
    ) -> O {
        expect(self.send_post(path, body).await, expected).await
    }

    /// `PUT path` with `body`, asserting `expected` and decoding the body.
    pub async fn put<I: Serialize + ?Sized, O: DeserializeOwned>(
        &self,
        path: &str,
        body: &I,
        expected: StatusCode,
    ) -> O {
        expect(self.send_put(path, body).await, expected).await
    }

    /// `DELETE path`, asserting `expected` and decoding the body (`()` for
    /// an empty one).
    pub async fn delete<O: DeserializeOwned>(&self, path: &str, expected: StatusCode) -> O {
        expect(self.send_delete(path).await, expected).await
    }
}

async fn send(request: RequestBuilder) -> Response {
    request
        .send()
        .await
        .expect("the request reaches the service")
}

/// Asserts the response's status (showing the body when it differs) and
/// decodes its body as `O`; an empty body decodes as JSON `null`, so `()`
/// and `Option<_>` accept it.
pub async fn expect<O: DeserializeOwned>(response: Response, expected: StatusCode) -> O {
    let status = response.status();
    let url = response.url().clone();
    let text = response.text().await.expect("a readable body");
    assert_eq!(status, expected, "{url} answered {status}: {text}");
    let text = if text.is_empty() { "null" } else { &text };
    serde_json::from_str(text)
        .unwrap_or_else(|e| panic!("{url}: the body does not decode ({e}): {text}"))
}

/// An error body's first message (empty when there is none).
pub fn first_message(body: &Value) -> &str {
    body["errors"][0]["message"].as_str().unwrap_or_default()
}

/// The `field` values of an error body, in order.
pub fn error_fields(body: &Value) -> Vec<String> {
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

/// The `Set-Cookie` header of a response, if any.
pub fn set_cookie(response: &Response) -> Option<String> {
    response
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The `Set-Cookie` header of a response that sets the cookie `name`.
pub fn set_cookie_named(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.split('=').next() == Some(name))
        .map(str::to_string)
}

/// The value a response gives the cookie `name` (empty when it clears it).
pub fn cookie_value(response: &Response, name: &str) -> Option<String> {
    let header = set_cookie_named(response, name)?;
    let pair = header.split(';').next()?;
    pair.split_once('=').map(|(_, v)| v.to_string())
}
