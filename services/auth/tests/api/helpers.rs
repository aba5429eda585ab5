//! `spawn_app()`: the real auth service on a free port, against a database of
//! its own (migrated by the service's own start-up) and a JetStream namespace
//! of its own, with a cookie-keeping client (see [`testing::TestApp`]).

use auth::config::FrontDoorSettings;
use common::testing::{self, TestEnv};
use serde_json::{Value, json};

pub(crate) use common::testing::{error_fields, set_cookie};

/// The auth service under test and the helpers below.
pub(crate) struct TestApp(testing::TestApp);

impl std::ops::Deref for TestApp {
    type Target = testing::TestApp;
    fn deref(&self) -> &testing::TestApp {
        &self.0
    }
}

pub(crate) async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// The auth service with its front door adjusted by `adjust` (its counts
/// are the test's own: they live under the test's namespace in Redis).
pub(crate) async fn spawn_app_with(adjust: impl FnOnce(&mut FrontDoorSettings)) -> TestApp {
    let env = TestEnv::new("auth-tests").await;
    let mut front_door = FrontDoorSettings::new(testing::redis_url(), env.prefix.clone());
    adjust(&mut front_door);
    let settings = auth::config::Settings {
        common: env.common_settings(),
        database_url: env.db.url.clone(),
        front_door,
    };
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
