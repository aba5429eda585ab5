//! The inbox: which events a consumer has already applied, for events that
//! carry no version (expiration.complete, payment.created). Record the id in
//! the same transaction as the event's effect, so that the two commit or roll
//! back together.

use sqlx::PgConnection;
use uuid::Uuid;

/// Records that `consumer` is applying `event_id`. Returns `false` when it
/// was already recorded: the event is a duplicate and its effect must be
/// skipped. Call it inside the transaction that applies the effect.
pub async fn first_delivery(
    conn: &mut PgConnection,
    consumer: &str,
    event_id: Uuid,
) -> sqlx::Result<bool> {
    let inserted = sqlx::query!(
        "INSERT INTO inbox (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        consumer,
        event_id
    )
    .execute(conn)
    .await?;
    Ok(inserted.rows_affected() == 1)
}
