//! The Stripe webhook events already handled: Stripe delivers at least
//! once, and an event seen before is acknowledged without effect.

use anyhow::Context as _;
use sqlx::PgPool;

/// Whether the event `id` was handled before.
pub(crate) async fn seen(pool: &PgPool, id: &str) -> anyhow::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM webhook_events WHERE id = $1) AS "seen!""#,
        id
    )
    .fetch_one(pool)
    .await
    .context("looking up a webhook event")
}

/// Records the event `id` (of type `kind`) as handled; recording it again
/// changes nothing.
pub(crate) async fn record(pool: &PgPool, id: &str, kind: &str) -> anyhow::Result<()> {
    sqlx::query!(
        "INSERT INTO webhook_events (id, type) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
        id,
        kind
    )
    .execute(pool)
    .await
    .context("recording a webhook event")?;
    Ok(())
}
