//! When does a ticket reach the orders service's replica? A trigger on the
//! replica's `tickets` table records, in a table of the benchmark's own, the
//! database clock when the transaction that inserted each row commits, so
//! the lag of every ticket is exact instead of bounded by a polling
//! interval. The trigger is deferred to the commit, so a listener that
//! applies a batch in one transaction is timed when the batch becomes
//! visible, not when its first row was written.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

/// Installs the arrival log on an orders database (after its migrations).
pub async fn record_arrivals(orders: &PgPool) -> anyhow::Result<()> {
    sqlx::raw_sql(
        r#"
        CREATE TABLE bench_replica_arrivals (
            id         UUID        PRIMARY KEY,
            arrived_at TIMESTAMPTZ NOT NULL
        );
        CREATE FUNCTION bench_replica_arrival() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO bench_replica_arrivals (id, arrived_at)
            VALUES (NEW.id, clock_timestamp())
            ON CONFLICT (id) DO NOTHING;
            RETURN NULL;
        END
        $$;
        CREATE CONSTRAINT TRIGGER bench_replica_arrival AFTER INSERT ON tickets
            DEFERRABLE INITIALLY DEFERRED
            FOR EACH ROW EXECUTE FUNCTION bench_replica_arrival();
        "#,
    )
    .execute(orders)
    .await
    .context("installing the replica arrival log")?;
    Ok(())
}

/// How many tickets have reached the replica.
pub async fn arrived_count(orders: &PgPool) -> anyhow::Result<usize> {
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM bench_replica_arrivals")
        .fetch_one(orders)
        .await
        .context("counting replica arrivals")?;
    Ok(usize::try_from(n).unwrap_or(0))
}

/// Waits until at least `n` tickets have reached the replica, polling every
/// 50 ms for at most `wait`; false when they did not.
pub async fn wait_for_arrivals(orders: &PgPool, n: usize, wait: Duration) -> anyhow::Result<bool> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        if arrived_count(orders).await? >= n {
            return Ok(true);
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The moment each ticket reached the replica (tickets that have not are
/// absent).
pub async fn arrivals(orders: &PgPool) -> anyhow::Result<HashMap<Uuid, DateTime<Utc>>> {
    let rows: Vec<(Uuid, DateTime<Utc>)> =
        sqlx::query_as("SELECT id, arrived_at FROM bench_replica_arrivals")
            .fetch_all(orders)
            .await
            .context("reading replica arrivals")?;
    Ok(rows.into_iter().collect())
}
