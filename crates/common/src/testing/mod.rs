//! Test support against the real servers of the machine, shared by every
//! service's tests:
//!
//! - [`db`]: a fresh PostgreSQL database per test;
//! - [`bus`]: a JetStream namespace per test ([`TestEnv`] bundles it with a
//!   database), publishing into it and reading what reached its streams;
//! - [`nats_server`] and [`redis_server`]: private servers a test may kill
//!   and restart;
//! - [`fault_proxy`]: a TCP proxy that adds latency, hangs, resets and cuts
//!   the connections to a real server;
//! - [`tokens`]: every kind of wrong session token;
//! - [`http`]: [`spawn_app`], which serves a service under test, and
//!   [`TestClient`], which calls it.
//!
//! Set `TEST_LOG=1` (or a filter such as `TEST_LOG=debug`) to see the
//! services' logs in a test's output.

pub mod bus;
pub mod db;
pub mod fault_proxy;
pub mod http;
pub mod nats_server;
pub mod redis_server;
pub mod tokens;

use std::time::Duration;

use uuid::Uuid;

use crate::config::{CommonSettings, ProcessSettings, SessionSettings};

pub use bus::{
    TestEnv, consumed, consumer_info, msg_id, nats_settings, nats_url, outbox_settled, publish,
    published, published_json, stream_messages, sweep_stale_test_streams, unique_prefix,
    wait_for_published,
};
pub use db::{TestDatabase, admin_database_url};
pub use fault_proxy::{Fault, FaultProxy};
pub use http::{
    TestApp, TestClient, TestServer, cookie_value, error_fields, expect, first_message, readiness,
    set_cookie, set_cookie_named, spawn_app,
};
pub use nats_server::NatsServer;
pub use redis_server::RedisServer;

/// The Redis server tests use (`REDIS_URL`, default local).
pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Turns on the services' logs in tests when `TEST_LOG` is set (to `1`,
/// `true`, or a `tracing` filter such as `debug,sqlx=warn`); quiet otherwise.
/// Idempotent: every [`spawn_app`] calls it.
pub fn init_test_logs() {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        let Ok(value) = std::env::var("TEST_LOG") else {
            return;
        };
        let filter = match value.trim() {
            "" | "0" | "false" => return,
            "1" | "true" => "info",
            filter => filter,
        };
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_test_writer()
            .try_init();
    });
}

/// Polls `check` every 20 ms until it returns true or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A port on 127.0.0.1 that nothing listens on right now, for a private
/// server to take.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Blocks until something accepts connections on 127.0.0.1:`port`;
/// panics naming `server` after 30 s (a loaded machine starts slowly).
pub(crate) fn wait_until_listening(port: u16, server: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "{server} did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The key every service under test signs and checks sessions with.
pub const TEST_SESSION_KEY: &str = "test-key-test-key-test-key-test-key!";

/// The session settings of every service under test: one shared test key,
/// no deny cache (signing only; see [`session_settings_in`]).
pub fn session_settings() -> SessionSettings {
    SessionSettings {
        key: TEST_SESSION_KEY.into(),
        ttl: Duration::from_secs(3600),
        refresh_ttl: Duration::from_secs(7200),
        secure_cookie: false,
        redis_url: None,
        cache_prefix: String::new(),
    }
}

/// The session settings of a service under test in the namespace `prefix`:
/// the test key, and a deny cache of the namespace's own on the tests' Redis.
pub fn session_settings_in(prefix: &str) -> SessionSettings {
    SessionSettings {
        redis_url: Some(redis_url()),
        cache_prefix: format!("{prefix}:session:"),
        ..session_settings()
    }
}

/// Common settings for a service under test: port 0, the test session key,
/// the JetStream namespace `prefix` on the tests' NATS server and a deny
/// cache under the same prefix on the tests' Redis.
pub fn common_settings(prefix: &str) -> CommonSettings {
    CommonSettings {
        process: ProcessSettings {
            port: 0,
            log_format: crate::config::LogFormat::Pretty,
            shutdown_timeout: Duration::from_secs(5),
            request_timeout: crate::completion::DEFAULT_REQUEST_TIMEOUT,
        },
        nats: nats_settings(prefix),
        session: session_settings_in(prefix),
    }
}

/// A `Cookie` header value carrying a valid session for `user`, signed with
/// the test key, as if the user had signed in through the auth service.
pub fn session_cookie(user: &crate::session::CurrentUser) -> String {
    let token = crate::session::Sessions::new(&session_settings())
        .expect("test sessions")
        .issue(user)
        .expect("sign a test session");
    format!("{}={token}", crate::session::COOKIE_NAME)
}

/// A new user id and email, not signed up anywhere (sessions are stateless).
pub fn new_user() -> crate::session::CurrentUser {
    let id = Uuid::now_v7();
    crate::session::CurrentUser {
        id,
        email: format!("{}@test.com", id.simple()),
    }
}

/// A signed-in user for API tests: a new user and the `Cookie` header value
/// of their session (sessions are stateless: no auth service is needed).
pub struct TestUser {
    /// The user's id.
    pub id: Uuid,
    /// `Cookie` header value of the user's session.
    pub cookie: String,
}

impl TestUser {
    /// A new user, signed in.
    pub fn new() -> TestUser {
        let user = new_user();
        TestUser {
            id: user.id,
            cookie: session_cookie(&user),
        }
    }
}

impl Default for TestUser {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_test_namespaces_are_swept() {
        assert!(super::bus::is_test_stream("t0123456789ab_TICKETS"));
        assert!(!super::bus::is_test_stream("TICKETS"));
        assert!(!super::bus::is_test_stream("tickets_TICKETS"));
        assert!(!super::bus::is_test_stream("t0123456789xy_TICKETS"));
    }
}
