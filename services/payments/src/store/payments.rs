//! The `payments` table: one row per attempt to charge an order, written
//! (`pending`) before the provider is called, and moved on as the charge
//! ends (see the `payments` migration for the life-cycle).

use anyhow::Context as _;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::domain::PaymentStatus;

/// How long a charge may stay `pending` before a new attempt may replace
/// it: longer than the provider's timeout with its retries.
pub(crate) const STALE_PENDING_SECONDS: f64 = 120.0;

/// A payment as the settling and refunding code needs it.
#[derive(Debug, Clone)]
pub(crate) struct Payment {
    pub(crate) id: Uuid,
    pub(crate) order_id: Uuid,
    pub(crate) status: PaymentStatus,
    pub(crate) amount: i64,
    pub(crate) stripe_id: Option<String>,
}

/// The order's charge that is under way or kept, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ActivePayment {
    pub(crate) id: Uuid,
    pub(crate) status: PaymentStatus,
    /// Pending for longer than [`STALE_PENDING_SECONDS`].
    pub(crate) stale: bool,
}

/// The order's charge under way or kept (at most one, by the
/// `payments_order_active_key` index).
pub(crate) async fn active(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> anyhow::Result<Option<ActivePayment>> {
    sqlx::query_as!(
        ActivePayment,
        r#"SELECT id, status AS "status: PaymentStatus",
                  updated_at < now() - make_interval(secs => $2) AS "stale!"
           FROM payments WHERE order_id = $1 AND status = ANY($3)"#,
        order_id,
        STALE_PENDING_SECONDS,
        &PaymentStatus::ACTIVE[..] as &[PaymentStatus]
    )
    .fetch_optional(&mut *conn)
    .await
    .context("looking up an order's active payment")
}

/// Whether the order has a charge under way or kept other than `except`.
pub(crate) async fn has_other_active(
    conn: &mut PgConnection,
    order_id: Uuid,
    except: Uuid,
) -> anyhow::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM payments WHERE order_id = $1 AND id <> $2
                          AND status = ANY($3)) AS "exists!""#,
        order_id,
        except,
        &PaymentStatus::ACTIVE[..] as &[PaymentStatus]
    )
    .fetch_one(&mut *conn)
    .await
    .context("looking for another payment of the order")
}

/// The number the next attempt to charge an order gets (1 for the first).
pub(crate) async fn next_attempt(conn: &mut PgConnection, order_id: Uuid) -> anyhow::Result<i32> {
    sqlx::query_scalar!(
        r#"SELECT COALESCE(MAX(attempt), 0) + 1 AS "attempt!" FROM payments WHERE order_id = $1"#,
        order_id
    )
    .fetch_one(&mut *conn)
    .await
    .context("numbering a payment attempt")
}

/// A payment row to insert.
pub(crate) struct NewPaymentRow<'a> {
    pub(crate) id: Uuid,
    pub(crate) order_id: Uuid,
    pub(crate) attempt: i32,
    pub(crate) idempotency_key: &'a str,
    pub(crate) status: PaymentStatus,
    pub(crate) amount: i64,
    pub(crate) currency: &'a str,
    pub(crate) stripe_id: Option<&'a str>,
}

/// Inserts a payment row. A second active payment of the order, or a
/// repeated idempotency key, is a unique violation.
pub(crate) async fn insert(conn: &mut PgConnection, row: &NewPaymentRow<'_>) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO payments \
         (id, order_id, attempt, idempotency_key, status, amount, currency, stripe_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        row.id,
        row.order_id,
        row.attempt,
        row.idempotency_key,
        row.status as PaymentStatus,
        row.amount,
        row.currency,
        row.stripe_id
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The payment a PaymentIntent belongs to: by our id from its metadata,
/// else by the intent's id.
pub(crate) async fn find_for_intent(
    pool: &PgPool,
    payment_id: Option<Uuid>,
    intent_id: &str,
) -> anyhow::Result<Option<Payment>> {
    sqlx::query_as!(
        Payment,
        r#"SELECT id, order_id, status AS "status: PaymentStatus", amount, stripe_id
           FROM payments WHERE id = $1 OR stripe_id = $2 ORDER BY (id = $1) DESC LIMIT 1"#,
        payment_id,
        intent_id
    )
    .fetch_optional(pool)
    .await
    .context("looking up the payment of an intent")
}

/// Reads a payment and locks its row until the transaction ends.
pub(crate) async fn lock(conn: &mut PgConnection, id: Uuid) -> anyhow::Result<Option<Payment>> {
    sqlx::query_as!(
        Payment,
        r#"SELECT id, order_id, status AS "status: PaymentStatus", amount, stripe_id
           FROM payments WHERE id = $1 FOR UPDATE"#,
        id
    )
    .fetch_optional(&mut *conn)
    .await
    .context("locking a payment")
}

/// Moves a payment to `status`; `stripe_id` and `failure` are kept when
/// `None`.
pub(crate) async fn set_status(
    conn: &mut PgConnection,
    id: Uuid,
    status: PaymentStatus,
    stripe_id: Option<&str>,
    failure: Option<&str>,
) -> anyhow::Result<()> {
    sqlx::query!(
        "UPDATE payments SET status = $2, stripe_id = COALESCE($3, stripe_id), \
         failure_message = COALESCE($4, failure_message), updated_at = now() WHERE id = $1",
        id,
        status as PaymentStatus,
        stripe_id,
        failure
    )
    .execute(&mut *conn)
    .await
    .with_context(|| format!("marking a payment {}", status.as_str()))?;
    Ok(())
}

/// Marks a pending payment failed; a payment that has moved on is left alone
/// (a late `payment_failed` webhook must not undo a success). `true` when it
/// was pending.
pub(crate) async fn fail_pending(
    pool: &PgPool,
    id: Uuid,
    message: &str,
    stripe_id: Option<&str>,
) -> anyhow::Result<bool> {
    let updated = sqlx::query!(
        "UPDATE payments SET status = $4, failure_message = $2, \
         stripe_id = COALESCE($3, stripe_id), updated_at = now() \
         WHERE id = $1 AND status = $5",
        id,
        message,
        stripe_id,
        PaymentStatus::Failed as PaymentStatus,
        PaymentStatus::Pending as PaymentStatus
    )
    .execute(pool)
    .await
    .context("marking a payment failed")?;
    Ok(updated.rows_affected() == 1)
}

/// Records the intent of a charge that is still processing.
pub(crate) async fn set_pending_intent(
    pool: &PgPool,
    id: Uuid,
    stripe_id: &str,
) -> anyhow::Result<()> {
    sqlx::query!(
        "UPDATE payments SET stripe_id = $2, updated_at = now() WHERE id = $1",
        id,
        stripe_id
    )
    .execute(pool)
    .await
    .context("recording a processing payment")?;
    Ok(())
}
