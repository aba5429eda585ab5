//! `spawn_app()`: the real auth service on a free port, against a database of
//! its own (migrated by the service's own start-up) and a JetStream namespace
//! of its own, with a cookie-keeping HTTP client.

use common::lifecycle::Lifecycle;
use common::testing::{self, TestDatabase, TestServer};
use serde_json::{Value, json};

pub(crate) struct TestApp {
    pub(crate) address: String,
    pub(crate) client: reqwest::Client,
    pub(crate) db: TestDatabase,
    _server: TestServer,
}

pub(crate) async fn spawn_app() -> TestApp {
    let db = TestDatabase::create_empty().await;
    let settings = auth::config::Settings {
        common: common::config::CommonSettings {
            port: 0,
            nats: testing::nats_settings(&testing::unique_prefix()),
            session: testing::session_settings(),
            log_format: common::config::LogFormat::Pretty,
            shutdown_timeout: std::time::Duration::from_secs(5),
        },
        database_url: db.url.clone(),
    };
    let lifecycle = Lifecycle::new();
    let service = auth::startup::build(&settings, &lifecycle)
        .await
        .expect("auth starts");
    let server = TestServer::start(service.into_app(), lifecycle).await;
    TestApp {
        address: server.address.clone(),
        client: new_client(),
        db,
        _server: server,
    }
}

/// A client that keeps cookies, like a browser.
pub(crate) fn new_client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("client")
}

impl TestApp {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub(crate) async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub(crate) async fn signup(&self, email: &str, password: &str) -> reqwest::Response {
        self.post_json(
            "/api/users/signup",
            &json!({"email": email, "password": password}),
        )
        .await
    }

    pub(crate) async fn signin(&self, email: &str, password: &str) -> reqwest::Response {
        self.post_json(
            "/api/users/signin",
            &json!({"email": email, "password": password}),
        )
        .await
    }

    pub(crate) async fn current_user(&self) -> Value {
        self.client
            .get(self.url("/api/users/currentuser"))
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("json")
    }
}

/// The `Set-Cookie` header of a response, if any.
pub(crate) fn set_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
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
