//! Test support against the real servers of the machine: a fresh, migrated
//! PostgreSQL database per test, a unique JetStream namespace per test, and a
//! private `nats-server` that a test may stop and start.

use std::net::TcpListener as StdListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

use crate::config::{NatsSettings, SessionSettings};

/// The server tests create their databases on (`DATABASE_URL`, default the
/// local `postgres` database).
pub fn admin_database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// The NATS server tests use (`NATS_URL`, default local).
pub fn nats_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// The Redis server tests use (`REDIS_URL`, default local).
pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A JetStream namespace no other test uses. The first call in a process
/// also sweeps, in the background, the streams of test namespaces older than
/// [`STALE_TEST_STREAMS`], so the shared server does not fill up with them.
pub fn unique_prefix() -> String {
    static SWEEP: std::sync::Once = std::sync::Once::new();
    SWEEP.call_once(|| {
        std::thread::spawn(|| {
            if let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                runtime.block_on(sweep_stale_test_streams());
            }
        });
    });
    format!("t{}", &Uuid::new_v4().simple().to_string()[..12])
}

/// How old a test namespace's streams must be before a sweep deletes them.
pub const STALE_TEST_STREAMS: Duration = Duration::from_secs(30 * 60);

fn is_test_stream(name: &str) -> bool {
    let Some((prefix, _)) = name.split_once('_') else {
        return false;
    };
    prefix.len() == 13
        && prefix.starts_with('t')
        && prefix[1..].chars().all(|c| c.is_ascii_hexdigit())
}

async fn sweep_stale_test_streams() {
    use futures::StreamExt as _;
    let Ok(client) = async_nats::connect(nats_url()).await else {
        return;
    };
    let js = async_nats::jetstream::new(client);
    let names: Vec<String> = js
        .stream_names()
        .filter_map(|n| async move { n.ok() })
        .filter(|n| std::future::ready(is_test_stream(n)))
        .collect()
        .await;
    let cutoff = time_cutoff();
    for name in names {
        let Ok(mut stream) = js.get_stream(&name).await else {
            continue;
        };
        let stale = stream
            .info()
            .await
            .is_ok_and(|info| info.created.unix_timestamp() < cutoff);
        if stale {
            let _ = js.delete_stream(&name).await;
        }
    }
}

fn time_cutoff() -> i64 {
    chrono::Utc::now().timestamp() - STALE_TEST_STREAMS.as_secs() as i64
}

pub fn nats_settings(prefix: &str) -> NatsSettings {
    NatsSettings {
        url: nats_url(),
        prefix: prefix.to_string(),
        stream_replicas: 1,
    }
}

pub fn session_settings() -> SessionSettings {
    SessionSettings {
        key: "test-key-test-key-test-key-test-key!".into(),
        ttl: Duration::from_secs(3600),
        secure_cookie: false,
    }
}

/// A database of its own for one test. Names start with `bt_test_`, so
/// leftovers are easy to drop (`scripts/dev test` does).
pub struct TestDatabase {
    pub name: String,
    pub url: String,
    pub pool: PgPool,
}

impl TestDatabase {
    /// Creates an empty database and applies the shared migrations and `own`.
    pub async fn create(own: &Migrator) -> TestDatabase {
        let db = Self::create_empty().await;
        crate::db::migrate(&db.pool, own)
            .await
            .expect("migrations apply");
        db
    }

    /// Creates an empty database, without migrations.
    pub async fn create_empty() -> TestDatabase {
        let admin = admin_database_url();
        let name = format!("bt_test_{}", Uuid::new_v4().simple());
        let mut conn = PgConnection::connect(&admin)
            .await
            .expect("PostgreSQL is reachable at DATABASE_URL (run scripts/dev test)");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(r#"CREATE DATABASE "{name}""#)))
            .execute(&mut conn)
            .await
            .expect("create test database");
        let url = match admin.rsplit_once('/') {
            Some((base, _)) => format!("{base}/{name}"),
            None => panic!("DATABASE_URL has no database name"),
        };
        let pool = PgPoolOptions::new()
            .max_connections(30)
            .connect(&url)
            .await
            .expect("connect to test database");
        TestDatabase { name, url, pool }
    }
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

/// A private JetStream-enabled `nats-server` on a free port with its own
/// store directory, for tests that stop and restart the broker. Killed on drop.
pub struct NatsServer {
    pub port: u16,
    store: PathBuf,
    child: Option<Child>,
}

impl NatsServer {
    pub fn start() -> NatsServer {
        let port = StdListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let store = std::env::temp_dir().join(format!("bt-nats-{}", Uuid::new_v4().simple()));
        let mut server = NatsServer {
            port,
            store,
            child: None,
        };
        server.resume();
        server
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Stops the server (its stored streams stay on disk).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and store.
    pub fn resume(&mut self) {
        let binary = [
            "/usr/sbin/nats-server",
            "/usr/bin/nats-server",
            "nats-server",
        ]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or("nats-server");
        let child = Command::new(binary)
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(&self.store)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server is installed (scripts/dev installs it)");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "nats-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.store);
    }
}

/// A service served on a free local port until dropped.
pub struct TestServer {
    pub address: String,
    pub lifecycle: crate::lifecycle::Lifecycle,
}

impl TestServer {
    /// Serves `app` (a finished router) with `lifecycle` on 127.0.0.1:0.
    pub async fn start(app: axum::Router, lifecycle: crate::lifecycle::Lifecycle) -> TestServer {
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

/// Common settings for a service under test: port 0, the test session key,
/// a JetStream namespace of its own.
pub fn common_settings(prefix: &str) -> crate::config::CommonSettings {
    crate::config::CommonSettings {
        port: 0,
        nats: nats_settings(prefix),
        session: session_settings(),
        log_format: crate::config::LogFormat::Pretty,
        shutdown_timeout: Duration::from_secs(5),
    }
}

/// A `Cookie` header value carrying a valid session for `user`, signed with
/// the test key, as if the user had signed in through the auth service.
pub fn session_cookie(user: &crate::session::CurrentUser) -> String {
    let token = crate::session::Sessions::new(&session_settings())
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
    pub id: Uuid,
    pub cookie: String,
}

impl TestUser {
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

/// Every message in `stream` of `bus`'s namespace, in stream order; none
/// when the stream does not exist (yet).
pub async fn stream_messages(
    bus: &crate::bus::Bus,
    stream: crate::events::Stream,
) -> Vec<async_nats::jetstream::message::StreamMessage> {
    let Ok(mut s) = bus.jetstream().get_stream(bus.name(stream.name())).await else {
        return Vec::new();
    };
    let Ok(info) = s.info().await else {
        return Vec::new();
    };
    let (first, last) = (info.state.first_sequence, info.state.last_sequence);
    let mut out = Vec::new();
    for seq in first..=last {
        if let Ok(m) = s.get_raw_message(seq).await {
            out.push(m);
        }
    }
    out
}

/// The `E` events published in `bus`'s namespace, in stream order.
pub async fn published<E: crate::events::Event>(bus: &crate::bus::Bus) -> Vec<E> {
    let stream = crate::events::Stream::of(E::SUBJECT).expect("a stream holds the subject");
    stream_messages(bus, stream)
        .await
        .iter()
        .filter(|m| bus.unprefixed(m.subject.as_str()) == E::SUBJECT)
        .map(|m| serde_json::from_slice(&m.payload).expect("a decodable event"))
        .collect()
}

/// Waits (at most `wait`) until the outbox in `pool` has nothing left to
/// publish.
pub async fn outbox_settled(pool: &PgPool, wait: Duration) -> bool {
    eventually(wait, || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            .fetch_one(pool)
            .await
            .is_ok_and(|pending| pending == 0)
    })
    .await
}

/// Waits (at most `wait`) until at least `n` `E` events are in the stream
/// and the outbox in `pool` is empty, and returns them all: a test then sees
/// any extra event that should not have been published.
pub async fn wait_for_published<E: crate::events::Event>(
    bus: &crate::bus::Bus,
    pool: &PgPool,
    n: usize,
    wait: Duration,
) -> Vec<E> {
    let reached = eventually(wait, || async { published::<E>(bus).await.len() >= n }).await;
    assert!(reached, "{n} × {} published", E::SUBJECT);
    assert!(outbox_settled(pool, wait).await, "the outbox settled");
    published::<E>(bus).await
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_test_namespaces_are_swept() {
        assert!(super::is_test_stream("t0123456789ab_TICKETS"));
        assert!(!super::is_test_stream("TICKETS"));
        assert!(!super::is_test_stream("tickets_TICKETS"));
        assert!(!super::is_test_stream("t0123456789xy_TICKETS"));
    }
}
