//! `spawn_app()`: the real auth service on a free port, against a database of
//! its own (migrated by the service's own start-up) and a JetStream namespace
//! of its own, with a cookie-keeping client (see [`testing::TestApp`]).

use auth::config::FrontDoorSettings;
use common::testing::{self, TestEnv};
use serde_json::{Value, json};

pub(crate) use common::testing::{cookie_value, error_fields, set_cookie, set_cookie_named};

/// The auth service under test and the helpers below.
pub(crate) struct TestApp(testing::TestApp);

impl std::ops::Deref for TestApp {
    type Target = testing::TestApp;
    fn deref(&self) -> &testing::TestApp {
        &self.0
    }
}

/// The admin every auth under test has (`ADMIN_EMAILS`).
pub(crate) const ADMIN: &str = "admin@test.com";

pub(crate) async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// The auth service with its settings changed by `change` first (the front
/// door's counts are the test's own: they live under the test's namespace
/// in Redis).
pub(crate) async fn spawn_app_with(change: impl FnOnce(&mut auth::config::Settings)) -> TestApp {
    let env = TestEnv::new("auth-tests").await;
    let mut settings = auth::config::Settings {
        common: env.common_settings(),
        database_url: env.db.url.clone(),
        front_door: FrontDoorSettings::new(testing::redis_url(), env.prefix.clone()),
        admin_emails: vec![ADMIN.into()],
    };
    change(&mut settings);
    TestApp(
        testing::spawn_app(env, |lifecycle| async move {
            auth::startup::build(&settings, &lifecycle).await
        })
        .await,
    )
}

/// A client that keeps cookies, like a second browser.
pub(crate) fn new_client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("client")
}

impl TestApp {
    pub(crate) async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client.send_post(path, body).await
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
            .get("/api/users/currentuser", reqwest::StatusCode::OK)
            .await
    }
}
