//! The PostgreSQL pool and migrations. Every service runs the shared outbox
//! and inbox migrations next to its own, in one `_sqlx_migrations` history.

use std::borrow::Cow;
use std::str::FromStr as _;
use std::time::Duration;

use anyhow::Context;
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// The outbox and inbox tables, shared by every service.
pub static SHARED_MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Connects lazily: a service starts (and reports not ready) while its
/// database is still coming up.
pub fn pool(url: &str) -> anyhow::Result<PgPool> {
    pool_of(url, 20)
}

/// A connection idle for longer than this is pinged before it is handed out.
const PING_WHEN_IDLE_FOR: Duration = Duration::from_secs(1);

/// [`pool`] with at most `connections` connections.
///
/// A connection is pinged before use only when it was idle for more than
/// [`PING_WHEN_IDLE_FOR`], so one that broke while idle (a database
/// restart) is replaced unseen. sqlx's default pings on every acquire: one
/// more round trip per transaction, and under overload the acquire timeout
/// fell in the middle of pings, which closed those connections; the pool
/// opened new ones, each costing PostgreSQL a process start, and the tickets
/// service collapsed into 503s (1,000 listings/s on a 2-core machine). A
/// database that stops answering while connections are busy is met by
/// `REQUEST_TIMEOUT_SECONDS` (503) and by `/readyz`, whose check has its own
/// timeout.
pub fn pool_of(url: &str, connections: u32) -> anyhow::Result<PgPool> {
    Ok(pool_options(connections).connect_lazy_with(connect_options(url)?))
}

/// [`pool_of`] whose sessions PostgreSQL ends when a transaction sits idle
/// (between its statements) for longer than `idle`: a client that stopped
/// in the middle of a transaction (its connection hung) then holds its locks
/// for no longer than that.
pub fn pool_ending_idle_transactions(
    url: &str,
    connections: u32,
    idle: Duration,
) -> anyhow::Result<PgPool> {
    let options = connect_options(url)?.options([(
        "idle_in_transaction_session_timeout",
        format!("{}ms", idle.as_millis()),
    )]);
    Ok(pool_options(connections).connect_lazy_with(options))
}

fn connect_options(url: &str) -> anyhow::Result<PgConnectOptions> {
    PgConnectOptions::from_str(url).with_context(|| "DATABASE_URL is not a valid PostgreSQL URL")
}

fn pool_options(connections: u32) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(connections)
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for > PING_WHEN_IDLE_FOR {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
        .acquire_timeout(Duration::from_secs(5))
}

/// Applies the shared migrations and then the service's own, as one
/// history in `_sqlx_migrations`. Shared versions are small integers and
/// service versions are timestamps, so the shared tables always come first.
pub async fn migrate(pool: &PgPool, service: &Migrator) -> anyhow::Result<()> {
    let mut migrations: Vec<_> = SHARED_MIGRATOR
        .migrations
        .iter()
        .chain(service.migrations.iter())
        .cloned()
        .collect();
    migrations.sort_by_key(|m| m.version);
    let combined = Migrator {
        migrations: Cow::Owned(migrations),
        ..Migrator::DEFAULT
    };
    combined
        .run(pool)
        .await
        .context("running database migrations")
}
