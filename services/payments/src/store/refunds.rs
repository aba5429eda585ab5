//! The `refunds` table, and the charges that must still be given back:
//! those a cancelled order kept, and those left `refunding` by a refund that
//! failed or was interrupted (the reconciler's list).

use anyhow::Context as _;
use sqlx::PgPool;
use uuid::Uuid;

use common::events::{OrderStatus, PaymentRefunded};
use common::outbox;

use crate::domain::{PaymentStatus, RefundReason};
use crate::store::payments::{self, Payment};

/// Charges a cancelled order kept. Charges already `refunding` are left to
/// the path that marked them (and to the reconciler), so that two paths do
/// not call the provider for one refund at the same moment.
pub(crate) async fn kept_by_cancelled_order(
    pool: &PgPool,
    order_id: Uuid,
) -> anyhow::Result<Vec<Payment>> {
    sqlx::query_as!(
        Payment,
        r#"SELECT p.id, p.order_id, p.status AS "status: PaymentStatus", p.amount, p.stripe_id
           FROM payments p JOIN orders o ON o.id = p.order_id
           WHERE p.order_id = $1 AND o.status = $2
             AND p.status = $3 AND p.stripe_id IS NOT NULL"#,
        order_id,
        OrderStatus::Cancelled.as_str(),
        PaymentStatus::Succeeded as PaymentStatus
    )
    .fetch_all(pool)
    .await
    .context("looking up the charges of a cancelled order")
}

/// A charge that must be given back, and why.
pub(crate) struct RefundDue {
    pub(crate) payment: Payment,
    pub(crate) reason: RefundReason,
}

/// Charges that must be given back and have waited `older_than_seconds`
/// since they last changed: left `refunding` by a failed or interrupted
/// refund, or kept for an order that was cancelled since.
pub(crate) async fn due(pool: &PgPool, older_than_seconds: f64) -> anyhow::Result<Vec<RefundDue>> {
    let rows = sqlx::query!(
        r#"SELECT p.id, p.order_id, p.status AS "status: PaymentStatus", p.amount, p.stripe_id,
                  o.status = $2 AS "order_cancelled!"
           FROM payments p JOIN orders o ON o.id = p.order_id
           WHERE p.stripe_id IS NOT NULL
             AND (p.status = $3 OR (p.status = $4 AND o.status = $2))
             AND p.updated_at < now() - make_interval(secs => $1)
           ORDER BY p.updated_at LIMIT 100"#,
        older_than_seconds,
        OrderStatus::Cancelled.as_str(),
        PaymentStatus::Refunding as PaymentStatus,
        PaymentStatus::Succeeded as PaymentStatus
    )
    .fetch_all(pool)
    .await
    .context("looking for refunds due")?;
    Ok(rows
        .into_iter()
        .map(|r| RefundDue {
            reason: if r.order_cancelled {
                RefundReason::OrderCancelled
            } else {
                RefundReason::Duplicate
            },
            payment: Payment {
                id: r.id,
                order_id: r.order_id,
                status: r.status,
                amount: r.amount,
                stripe_id: r.stripe_id,
            },
        })
        .collect())
}

/// Records a refund the provider made and marks its payment refunded, in one
/// transaction. Recording the same refund again changes nothing.
pub(crate) async fn record(
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
        reason as RefundReason
    )
    .execute(&mut *tx)
    .await
    .context("recording a refund")?;
    // Announced once: a second record of the same refund inserts nothing.
    if recorded.rows_affected() == 1 {
        let event = PaymentRefunded {
            id: refund_id,
            order_id: payment.order_id,
            payment_id: payment.id,
            amount: payment.amount,
        };
        outbox::enqueue(&mut tx, &event).await?;
    }
    payments::set_status(&mut tx, payment.id, PaymentStatus::Refunded, None, None).await?;
    tx.commit().await.context("committing a refund")?;
    Ok(())
}
