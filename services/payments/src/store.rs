//! The service's SQL: the orders replica, payments and their refunds, and
//! the Stripe webhook events already handled.

use anyhow::Context as _;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use common::events::{OrderCreated, OrderStatus, PaymentRefunded};
use common::outbox;

use crate::domain::{Order, PaymentStatus, RefundReason};

/// How long a charge may stay `pending` before a new attempt may replace
/// it: longer than the provider's timeout with its retries.
pub(crate) const STALE_PENDING_SECONDS: f64 = 120.0;

fn parse_order_status(text: &str) -> anyhow::Result<OrderStatus> {
    text.parse::<OrderStatus>().map_err(anyhow::Error::msg)
}

// ----- the orders replica -----

/// Adds an order to the replica; `false` when it was already there.
pub(crate) async fn insert_order(pool: &PgPool, order: &OrderCreated) -> anyhow::Result<bool> {
    let inserted = sqlx::query!(
        "INSERT INTO orders (id, user_id, price, status, version, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING",
        order.id,
        order.user_id,
        order.ticket.price,
        order.status.as_str(),
        order.version,
        order.expires_at
    )
    .execute(pool)
    .await
    .context("adding an order to the replica")?;
    Ok(inserted.rows_affected() == 1)
}

/// Marks an order cancelled at `version`, if the replica holds an older
/// version. The orders service bumps versions without events (completion),
/// so a cancellation may be more than one version ahead; it is terminal, so
/// nothing can come after it. `false` when no row was older.
pub(crate) async fn cancel_order(pool: &PgPool, id: Uuid, version: i64) -> anyhow::Result<bool> {
    let updated = sqlx::query!(
        "UPDATE orders SET status = 'cancelled', version = $2 WHERE id = $1 AND version < $2",
        id,
        version
    )
    .execute(pool)
    .await
    .context("cancelling an order of the replica")?;
    Ok(updated.rows_affected() == 1)
}

/// The replica's version of an order; `None` when it has not heard of it.
pub(crate) async fn order_version(pool: &PgPool, id: Uuid) -> anyhow::Result<Option<i64>> {
    sqlx::query_scalar!("SELECT version FROM orders WHERE id = $1", id)
        .fetch_optional(pool)
        .await
        .context("reading an order's replica version")
}

pub(crate) async fn find_order(pool: &PgPool, id: Uuid) -> anyhow::Result<Option<Order>> {
    let row = sqlx::query!(
        "SELECT id, user_id, price, status, expires_at FROM orders WHERE id = $1",
        id
    )
    .fetch_optional(pool)
    .await
    .context("looking up an order")?;
    row.map(|r| {
        Ok(Order {
            id: r.id,
            user_id: r.user_id,
            price: r.price,
            status: parse_order_status(&r.status)?,
            expires_at: r.expires_at,
        })
    })
    .transpose()
}

/// An order's status, with its row locked until the transaction ends: every
/// decision about paying or refunding an order is taken under this lock, and
/// so is the replica's cancellation.
pub(crate) async fn lock_order(
    conn: &mut PgConnection,
    id: Uuid,
) -> anyhow::Result<Option<OrderStatus>> {
    let status = sqlx::query_scalar!("SELECT status FROM orders WHERE id = $1 FOR UPDATE", id)
        .fetch_optional(&mut *conn)
        .await
        .context("locking an order")?;
    status.as_deref().map(parse_order_status).transpose()
}

// ----- payments -----

/// The order's charge that is under way or kept, if any.
pub(crate) struct ActivePayment {
    pub(crate) id: Uuid,
    pub(crate) status: PaymentStatus,
    /// Pending for longer than [`STALE_PENDING_SECONDS`].
    pub(crate) stale: bool,
}

pub(crate) async fn active_payment(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> anyhow::Result<Option<ActivePayment>> {
    let row = sqlx::query!(
        r#"SELECT id, status,
                  updated_at < now() - make_interval(secs => $2) AS "stale!"
           FROM payments WHERE order_id = $1 AND status IN ('pending', 'succeeded')"#,
        order_id,
        STALE_PENDING_SECONDS
    )
    .fetch_optional(&mut *conn)
    .await
    .context("looking up an order's active payment")?;
    row.map(|r| {
        Ok(ActivePayment {
            id: r.id,
            status: PaymentStatus::parse(&r.status)?,
            stale: r.stale,
        })
    })
    .transpose()
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

pub(crate) async fn insert_payment(
    conn: &mut PgConnection,
    row: &NewPaymentRow<'_>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO payments \
         (id, order_id, attempt, idempotency_key, status, amount, currency, stripe_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        row.id,
        row.order_id,
        row.attempt,
        row.idempotency_key,
        row.status.as_str(),
        row.amount,
        row.currency,
        row.stripe_id
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A payment as the settling and refunding code needs it.
#[derive(Debug, Clone)]
pub(crate) struct Payment {
    pub(crate) id: Uuid,
    pub(crate) order_id: Uuid,
    pub(crate) status: PaymentStatus,
    pub(crate) amount: i64,
    pub(crate) stripe_id: Option<String>,
}

struct PaymentRow {
    id: Uuid,
    order_id: Uuid,
    status: String,
    amount: i64,
    stripe_id: Option<String>,
}

impl TryFrom<PaymentRow> for Payment {
    type Error = anyhow::Error;

    fn try_from(row: PaymentRow) -> anyhow::Result<Self> {
        Ok(Payment {
            id: row.id,
            order_id: row.order_id,
            status: PaymentStatus::parse(&row.status)?,
            amount: row.amount,
            stripe_id: row.stripe_id,
        })
    }
}

/// The payment a PaymentIntent belongs to: by our id from its metadata,
/// else by the intent's id.
pub(crate) async fn find_payment_for_intent(
    pool: &PgPool,
    payment_id: Option<Uuid>,
    intent_id: &str,
) -> anyhow::Result<Option<Payment>> {
    let row = sqlx::query_as!(
        PaymentRow,
        "SELECT id, order_id, status, amount, stripe_id FROM payments \
         WHERE id = $1 OR stripe_id = $2 ORDER BY (id = $1) DESC LIMIT 1",
        payment_id,
        intent_id
    )
    .fetch_optional(pool)
    .await
    .context("looking up the payment of an intent")?;
    row.map(Payment::try_from).transpose()
}

/// Reads a payment and locks its row until the transaction ends.
pub(crate) async fn lock_payment(
    conn: &mut PgConnection,
    id: Uuid,
) -> anyhow::Result<Option<Payment>> {
    let row = sqlx::query_as!(
        PaymentRow,
        "SELECT id, order_id, status, amount, stripe_id FROM payments WHERE id = $1 FOR UPDATE",
        id
    )
    .fetch_optional(&mut *conn)
    .await
    .context("locking a payment")?;
    row.map(Payment::try_from).transpose()
}

/// Whether the order has a charge under way or kept other than `except`.
pub(crate) async fn has_other_active_payment(
    conn: &mut PgConnection,
    order_id: Uuid,
    except: Uuid,
) -> anyhow::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM payments WHERE order_id = $1 AND id <> $2
                          AND status IN ('pending', 'succeeded')) AS "exists!""#,
        order_id,
        except
    )
    .fetch_one(&mut *conn)
    .await
    .context("looking for another payment of the order")
}

/// Moves a payment to `status`; `stripe_id` and `failure` are kept when
/// `None`.
pub(crate) async fn set_payment_status(
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
        status.as_str(),
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
pub(crate) async fn fail_pending_payment(
    pool: &PgPool,
    id: Uuid,
    message: &str,
    stripe_id: Option<&str>,
) -> anyhow::Result<bool> {
    let updated = sqlx::query!(
        "UPDATE payments SET status = 'failed', failure_message = $2, \
         stripe_id = COALESCE($3, stripe_id), updated_at = now() \
         WHERE id = $1 AND status = 'pending'",
        id,
        message,
        stripe_id
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

/// Charges a cancelled order kept. Charges already `refunding` are left to
/// the path that marked them (and to the reconciler), so that two paths do
/// not call the provider for one refund at the same moment.
pub(crate) async fn unrefunded_payments_of_cancelled_order(
    pool: &PgPool,
    order_id: Uuid,
) -> anyhow::Result<Vec<Payment>> {
    let rows = sqlx::query_as!(
        PaymentRow,
        "SELECT p.id, p.order_id, p.status, p.amount, p.stripe_id FROM payments p \
         JOIN orders o ON o.id = p.order_id \
         WHERE p.order_id = $1 AND o.status = 'cancelled' \
           AND p.status = 'succeeded' AND p.stripe_id IS NOT NULL",
        order_id
    )
    .fetch_all(pool)
    .await
    .context("looking up the charges of a cancelled order")?;
    rows.into_iter().map(Payment::try_from).collect()
}

/// A charge that must be given back, and why.
pub(crate) struct RefundDue {
    pub(crate) payment: Payment,
    pub(crate) reason: RefundReason,
}

struct RefundDueRow {
    id: Uuid,
    order_id: Uuid,
    status: String,
    amount: i64,
    stripe_id: Option<String>,
    order_cancelled: bool,
}

/// Charges that must be given back and have waited `older_than_seconds`
/// since they last changed: left `refunding` by a failed or interrupted
/// refund, or kept for an order that was cancelled since.
pub(crate) async fn refunds_due(
    pool: &PgPool,
    older_than_seconds: f64,
) -> anyhow::Result<Vec<RefundDue>> {
    let rows = sqlx::query_as!(
        RefundDueRow,
        r#"SELECT p.id, p.order_id, p.status, p.amount, p.stripe_id,
                  o.status = 'cancelled' AS "order_cancelled!"
           FROM payments p JOIN orders o ON o.id = p.order_id
           WHERE p.stripe_id IS NOT NULL
             AND (p.status = 'refunding' OR (p.status = 'succeeded' AND o.status = 'cancelled'))
             AND p.updated_at < now() - make_interval(secs => $1)
           ORDER BY p.updated_at LIMIT 100"#,
        older_than_seconds
    )
    .fetch_all(pool)
    .await
    .context("looking for refunds due")?;
    rows.into_iter()
        .map(|r| {
            Ok(RefundDue {
                reason: if r.order_cancelled {
                    RefundReason::OrderCancelled
                } else {
                    RefundReason::Duplicate
                },
                payment: Payment::try_from(PaymentRow {
                    id: r.id,
                    order_id: r.order_id,
                    status: r.status,
                    amount: r.amount,
                    stripe_id: r.stripe_id,
                })?,
            })
        })
        .collect()
}

/// Records a refund the provider made and marks its payment refunded, in one
/// transaction. Recording the same refund again changes nothing.
pub(crate) async fn record_refund(
    pool: &PgPool,
    payment: &Payment,
    refund_stripe_id: &str,
    reason: RefundReason,
) -> anyhow::Result<()> {
    let mut tx = pool.begin().await.context("starting a transaction")?;
    let refund_id = Uuid::now_v7();
    let recorded = sqlx::query!(
        "INSERT INTO refunds (id, payment_id, stripe_id, amount, reason) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (payment_id) DO NOTHING",
        refund_id,
        payment.id,
        refund_stripe_id,
        payment.amount,
        reason.as_str()
    )
    .execute(&mut *tx)
    .await
    .context("recording a refund")?;
    if recorded.rows_affected() == 1 {
        let event = PaymentRefunded {
            id: refund_id,
            order_id: payment.order_id,
            payment_id: payment.id,
            amount: payment.amount,
        };
        outbox::enqueue(&mut tx, &event).await?;
    }
    set_payment_status(&mut tx, payment.id, PaymentStatus::Refunded, None, None).await?;
    tx.commit().await.context("committing a refund")?;
    Ok(())
}

// ----- webhook events -----

pub(crate) async fn webhook_event_seen(pool: &PgPool, id: &str) -> anyhow::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM webhook_events WHERE id = $1) AS "seen!""#,
        id
    )
    .fetch_one(pool)
    .await
    .context("looking up a webhook event")
}

pub(crate) async fn record_webhook_event(
    pool: &PgPool,
    id: &str,
    kind: &str,
) -> anyhow::Result<()> {
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
