//! The PostgreSQL pool and migrations. Every service runs the shared outbox
//! and inbox migrations next to its own, in one `_sqlx_migrations` history.

use std::borrow::Cow;
use std::time::Duration;

use anyhow::Context;
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;

/// The outbox and inbox tables, shared by every service.
pub static SHARED_MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Connects lazily: a service starts (and reports not ready) while its
/// database is still coming up.
pub fn pool(url: &str) -> anyhow::Result<PgPool> {
    pool_of(url, 20)
}

/// [`pool`] with at most `connections` connections.
pub fn pool_of(url: &str, connections: u32) -> anyhow::Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect_lazy(url)
        .with_context(|| "DATABASE_URL is not a valid PostgreSQL URL")
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
