//! Request work runs to completion: requests abandoned in the middle of a
//! transaction (the client goes away, or the request times out) must never
//! leave the pool's connection inside an open transaction.
//!
//! sqlx 0.9.0 returns a connection to the pool inside a transaction when a
//! `begin()` future is dropped while `BEGIN` is in flight. The database is
//! reached through a proxy that delays every packet by a few milliseconds, so
//! that `BEGIN` is in flight long enough for the abandonments, spread over
//! the handler's run, to hit it; the pool has one connection, so every
//! request gets the connection the previous one returned. The control test
//! shows the same scenario does leak without the shared middleware: if it
//! ever stops leaking (a fixed sqlx), that test says so.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::State;
use axum::routing::post;
use common::error::ApiError;
use common::lifecycle::Lifecycle;
use common::testing::{TestDatabase, TestServer, eventually};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection as _, PgPool, Row as _};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// Requests started and abandoned per test.
const ABANDONED: usize = 100;

/// The delay the proxy adds to every packet, each way.
const LATENCY: Duration = Duration::from_millis(4);

/// PostgreSQL's warning when `BEGIN` runs inside a transaction.
const LEAK_WARNING: &str = "there is already a transaction in progress";

/// What sqlx logged about PostgreSQL's notices, shared by the tests of this
/// binary (which take turns: see [`TURN`]).
static NOTICES: Mutex<Vec<String>> = Mutex::new(Vec::new());
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[derive(Clone)]
struct Work {
    pool: PgPool,
    started: Arc<AtomicUsize>,
    finished: Arc<AtomicUsize>,
}

/// A transaction, as every write handler has one.
async fn transact(State(work): State<Work>) -> Result<&'static str, ApiError> {
    work.started.fetch_add(1, Ordering::SeqCst);
    let mut tx = work.pool.begin().await.context("begin")?;
    sqlx::query("SELECT 1")
        .execute(&mut *tx)
        .await
        .context("select")?;
    tx.commit().await.context("commit")?;
    work.finished.fetch_add(1, Ordering::SeqCst);
    Ok("done")
}

#[tokio::test]
async fn abandoned_requests_never_leave_the_connection_in_a_transaction() {
    let _turn = TURN.lock().await;
    let work = one_connection_pool().await;
    let app = common::http::finish_with_timeout(router(&work), Duration::from_millis(15));
    let server = TestServer::start(app, Lifecycle::new()).await;

    let answers = abandon_requests(&server.address).await;

    // Every abandoned request the server had started still ran to the end
    // (a client may give up before its request even reached a handler).
    let finished = eventually(Duration::from_secs(120), || async {
        let started = work.started.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(200)).await;
        started == work.started.load(Ordering::SeqCst)
            && started == work.finished.load(Ordering::SeqCst)
    })
    .await;
    let (started, done) = (
        work.started.load(Ordering::SeqCst),
        work.finished.load(Ordering::SeqCst),
    );
    assert!(
        finished,
        "{done} of the {started} started requests finished their work"
    );
    assert!(
        started >= ABANDONED / 2,
        "only {started} of {ABANDONED} requests reached the handler"
    );
    assert!(
        !in_transaction(&work.pool).await,
        "the next borrower is inside a leaked transaction"
    );
    let leaks = leak_warnings();
    assert_eq!(leaks, 0, "PostgreSQL warned {leaks}× '{LEAK_WARNING}'");
    // The ones the server gave up on were told to come back.
    assert!(
        answers.timed_out > 0,
        "some requests outlasted the 15 ms timeout"
    );
    assert_eq!(answers.timed_out, answers.with_retry_after);
}

#[tokio::test]
async fn without_the_middleware_the_same_requests_leak_a_transaction() {
    let _turn = TURN.lock().await;
    let work = one_connection_pool().await;
    // The bare router, as axum serves it: a client that goes away cancels
    // the handler wherever it is.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = format!("http://{}", listener.local_addr().expect("address"));
    let serving = router(&work);
    let server = tokio::spawn(async move { axum::serve(listener, serving).await });

    abandon_requests(&address).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let warnings = leak_warnings();
    let open = in_transaction(&work.pool).await;
    eprintln!(
        "without the middleware: {warnings}× '{LEAK_WARNING}', connection left in a transaction: {open}"
    );
    let leaked = warnings > 0 || open;
    server.abort();
    assert!(
        leaked,
        "no transaction leaked: if sqlx fixed its cancellation bug, this test (not the \
         run-to-completion middleware) has served its purpose"
    );
}

fn router(work: &Work) -> Router {
    Router::new()
        .route("/work", post(transact))
        .with_state(work.clone())
}

/// A fresh database behind the delaying proxy, in a pool of one connection.
async fn one_connection_pool() -> Work {
    capture_notices();
    NOTICES.lock().expect("notices").clear();
    let db = TestDatabase::create_empty().await;
    let options: PgConnectOptions = db.url.parse().expect("database URL");
    let upstream = format!("{}:{}", options.get_host(), options.get_port());
    let proxy = delaying_proxy(upstream).await;
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(30))
        // No ping before each use: the transaction's own statements are what
        // the abandonments should land on.
        .test_before_acquire(false)
        .connect_with(options.host("127.0.0.1").port(proxy.port()))
        .await
        .expect("connect through the proxy");
    Work {
        pool,
        started: Arc::new(AtomicUsize::new(0)),
        finished: Arc::new(AtomicUsize::new(0)),
    }
}

struct Answers {
    timed_out: usize,
    with_retry_after: usize,
}

/// Starts [`ABANDONED`] requests one after another, each given up by the
/// client after a different delay spread over the handler's run.
async fn abandon_requests(address: &str) -> Answers {
    let mut answers = Answers {
        timed_out: 0,
        with_retry_after: 0,
    };
    for i in 0..ABANDONED {
        let patience = Duration::from_micros(500 + (i as u64 * 7_919) % 30_000);
        let client = reqwest::Client::builder()
            .timeout(patience)
            .build()
            .expect("client");
        if let Ok(response) = client.post(format!("{address}/work")).send().await
            && response.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE
        {
            answers.timed_out += 1;
            if response.headers().contains_key("retry-after") {
                answers.with_retry_after += 1;
            }
        }
    }
    answers
}

/// Whether the pool's connection is inside a transaction: there, `now()`
/// stays at the transaction's start while the statement's clock moves on.
/// (One simple-protocol message: outside a transaction, the statement is
/// its own transaction and both clocks agree.)
async fn in_transaction(pool: &PgPool) -> bool {
    let mut conn = pool.acquire().await.expect("the connection");
    sqlx::raw_sql("SELECT pg_sleep(0.01)")
        .execute(&mut *conn)
        .await
        .expect("sleep");
    let row = sqlx::raw_sql("SELECT now() = statement_timestamp()")
        .fetch_one(&mut *conn)
        .await
        .expect("clock");
    let fresh: bool = row.try_get(0).expect("a boolean");
    conn.ping().await.expect("ping");
    !fresh
}

fn leak_warnings() -> usize {
    NOTICES
        .lock()
        .expect("notices")
        .iter()
        .filter(|n| n.contains(LEAK_WARNING))
        .count()
}

/// Records sqlx's PostgreSQL notices (warnings and above) in [`NOTICES`].
fn capture_notices() {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "sqlx::postgres::notice=warn",
            ))
            .with_writer(|| NoticeWriter)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("one subscriber");
    });
}

struct NoticeWriter;

impl std::io::Write for NoticeWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        NOTICES
            .lock()
            .expect("notices")
            .push(String::from_utf8_lossy(buf).into_owned());
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A TCP proxy to `upstream` that holds every chunk for [`LATENCY`] before
/// passing it on, both ways.
async fn delaying_proxy(upstream: String) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
    let address = listener.local_addr().expect("proxy address");
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = TcpStream::connect(&upstream).await else {
                continue;
            };
            let (client_read, client_write) = client.into_split();
            let (server_read, server_write) = server.into_split();
            tokio::spawn(pass_on(client_read, server_write));
            tokio::spawn(pass_on(server_read, client_write));
        }
    });
    address
}

async fn pass_on(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                tokio::time::sleep(LATENCY).await;
                if to.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown().await;
}
