//! Paying for orders and giving money back, whoever asks: the payment
//! route, the Stripe webhook, the `order.cancelled` listener and the
//! reconciler all go through here, so the rules hold on every path:
//!
//! - an order is charged by one attempt at a time: a `pending` payment row
//!   is written (under the order's row lock) before the provider is called;
//! - a charge is kept only for an order that is not cancelled and has no
//!   other payment; otherwise it is refunded (never a charge without a
//!   ticket), and `payment.created` goes out only for a kept charge, from
//!   the outbox in the transaction that keeps it;
//! - every decision is taken under the order's row lock, which the replica's
//!   cancellation also takes, so a cancellation and a payment are ordered;
//! - the provider is never called inside a database transaction.

use std::time::Duration;

use anyhow::Context as _;
use sqlx::PgPool;
use uuid::Uuid;

use common::events::{OrderStatus, PaymentCreated};
use common::outbox;

use crate::domain::{Order, PaymentStatus, RefundReason, charge_key, refund_key};
use crate::provider::PaymentProvider;
use crate::store::{self, NewPaymentRow, Payment};

/// How long a submit waits for another attempt on the same order to end.
const CLAIM_WAIT: Duration = Duration::from_secs(15);
const CLAIM_POLL: Duration = Duration::from_millis(100);

/// The right to charge an order once: its `pending` payment row.
#[derive(Debug, Clone)]
pub(crate) struct Attempt {
    pub(crate) payment_id: Uuid,
    pub(crate) idempotency_key: String,
}

/// What [`claim`] found.
#[derive(Debug)]
pub(crate) enum Claim {
    Claimed(Attempt),
    AlreadyPaid,
    /// Another attempt is still under way.
    InProgress,
    Cancelled,
}

/// Writes a `pending` payment for `order` unless it is cancelled, paid, or
/// being charged. An attempt pending for longer than the provider can take
/// lost its answer; it is marked failed and replaced (should it have
/// charged after all, its webhook finds the order paid and refunds it).
pub(crate) async fn claim(pool: &PgPool, order: &Order, currency: &str) -> anyhow::Result<Claim> {
    let mut tx = pool.begin().await.context("starting a transaction")?;
    let status = store::lock_order(&mut tx, order.id)
        .await?
        .context("the order left the replica")?;
    if status == OrderStatus::Cancelled {
        return Ok(Claim::Cancelled);
    }
    if let Some(active) = store::active_payment(&mut tx, order.id).await? {
        match active.status {
            PaymentStatus::Succeeded => return Ok(Claim::AlreadyPaid),
            PaymentStatus::Pending if !active.stale => return Ok(Claim::InProgress),
            _ => {
                tracing::warn!(order_id = %order.id, payment_id = %active.id, "replacing a charge attempt that never got an answer");
                store::set_payment_status(
                    &mut tx,
                    active.id,
                    PaymentStatus::Failed,
                    None,
                    Some("No answer from the provider was recorded; replaced by a new attempt"),
                )
                .await?;
            }
        }
    }
    let attempt = store::next_attempt(&mut tx, order.id).await?;
    let claimed = Attempt {
        payment_id: Uuid::now_v7(),
        idempotency_key: charge_key(order.id, attempt),
    };
    store::insert_payment(
        &mut tx,
        &NewPaymentRow {
            id: claimed.payment_id,
            order_id: order.id,
            attempt,
            idempotency_key: &claimed.idempotency_key,
            status: PaymentStatus::Pending,
            amount: order.price,
            currency,
            stripe_id: None,
        },
    )
    .await
    .context("recording a payment attempt")?;
    tx.commit().await.context("committing a payment attempt")?;
    Ok(Claim::Claimed(claimed))
}

/// As [`claim`], but waits (a little) for another attempt on the same order
/// to end: a double submit then sees the first one's result.
pub(crate) async fn claim_waiting(
    pool: &PgPool,
    order: &Order,
    currency: &str,
) -> anyhow::Result<Claim> {
    let deadline = tokio::time::Instant::now() + CLAIM_WAIT;
    loop {
        match claim(pool, order, currency).await? {
            Claim::InProgress if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(CLAIM_POLL).await;
            }
            other => return Ok(other),
        }
    }
}

/// A successful charge to settle.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Charged<'a> {
    /// Of one of our payment rows.
    Payment { id: Uuid, order_id: Uuid },
    /// Of an intent no payment row knows (its row was lost, or it was made
    /// outside this service); it gets a row of its own.
    Untracked {
        order_id: Uuid,
        amount: i64,
        currency: &'a str,
    },
}

impl Charged<'_> {
    fn order_id(&self) -> Uuid {
        match *self {
            Self::Payment { order_id, .. } | Self::Untracked { order_id, .. } => order_id,
        }
    }
}

/// What became of a successful charge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Settlement {
    /// Kept: the order is paid and `payment.created` is in the outbox.
    Paid { payment_id: Uuid },
    /// Given back, for `reason`.
    Refunded {
        payment_id: Uuid,
        reason: RefundReason,
    },
    /// Settled before (by the route or a webhook); nothing changed.
    AlreadySettled {
        payment_id: Uuid,
        status: PaymentStatus,
    },
}

/// Keeps or refunds a successful charge (see the module's rules). Safe to
/// call again for the same charge: the second call finds it settled.
pub(crate) async fn settle_success(
    pool: &PgPool,
    provider: &PaymentProvider,
    charged: Charged<'_>,
    intent_id: &str,
) -> anyhow::Result<Settlement> {
    let order_id = charged.order_id();
    let mut tx = pool.begin().await.context("starting a transaction")?;
    let order_status = store::lock_order(&mut tx, order_id)
        .await?
        .with_context(|| {
            format!("a charge for order {order_id}, which the replica does not know yet")
        })?;
    let payment = match charged {
        Charged::Payment { id, .. } => store::lock_payment(&mut tx, id)
            .await?
            .with_context(|| format!("unknown payment {id}"))?,
        Charged::Untracked {
            amount, currency, ..
        } => {
            let id = Uuid::now_v7();
            let attempt = store::next_attempt(&mut tx, order_id).await?;
            let key = format!("intent-{intent_id}");
            // Inserted as failed, outside the one-active-payment index; the
            // decision below moves it on like any other charge.
            store::insert_payment(
                &mut tx,
                &NewPaymentRow {
                    id,
                    order_id,
                    attempt,
                    idempotency_key: &key,
                    status: PaymentStatus::Failed,
                    amount,
                    currency,
                    stripe_id: Some(intent_id),
                },
            )
            .await
            .context("recording a charge made outside this service")?;
            Payment {
                id,
                order_id,
                status: PaymentStatus::Failed,
                amount,
                stripe_id: Some(intent_id.to_string()),
            }
        }
    };
    let reason = match payment.status {
        PaymentStatus::Succeeded | PaymentStatus::Refunded => {
            return Ok(Settlement::AlreadySettled {
                payment_id: payment.id,
                status: payment.status,
            });
        }
        _ if order_status == OrderStatus::Cancelled => RefundReason::OrderCancelled,
        PaymentStatus::Refunding => RefundReason::Duplicate,
        PaymentStatus::Pending | PaymentStatus::Failed => {
            if store::has_other_active_payment(&mut tx, order_id, payment.id).await? {
                RefundReason::Duplicate
            } else {
                store::set_payment_status(
                    &mut tx,
                    payment.id,
                    PaymentStatus::Succeeded,
                    Some(intent_id),
                    None,
                )
                .await?;
                let event = PaymentCreated {
                    id: payment.id,
                    order_id,
                    stripe_id: intent_id.to_string(),
                };
                outbox::enqueue(&mut tx, &event).await?;
                tx.commit().await.context("committing a payment")?;
                tracing::info!(%order_id, payment_id = %payment.id, stripe_id = intent_id, "order paid");
                return Ok(Settlement::Paid {
                    payment_id: payment.id,
                });
            }
        }
    };
    store::set_payment_status(
        &mut tx,
        payment.id,
        PaymentStatus::Refunding,
        Some(intent_id),
        None,
    )
    .await?;
    tx.commit().await.context("committing a charge to refund")?;
    tracing::warn!(%order_id, payment_id = %payment.id, stripe_id = intent_id, reason = reason.as_str(), "charge not kept; refunding it");
    let payment = Payment {
        status: PaymentStatus::Refunding,
        stripe_id: Some(intent_id.to_string()),
        ..payment
    };
    refund(pool, provider, &payment, reason).await?;
    Ok(Settlement::Refunded {
        payment_id: payment.id,
        reason,
    })
}

/// Gives a charge back in full and records it. Safe to repeat: the provider
/// sees the same idempotency key (`refund-<payment>`), and the refund row is
/// written once.
pub(crate) async fn refund(
    pool: &PgPool,
    provider: &PaymentProvider,
    payment: &Payment,
    reason: RefundReason,
) -> anyhow::Result<()> {
    let stripe_id = payment
        .stripe_id
        .as_deref()
        .with_context(|| format!("payment {} has no intent to refund", payment.id))?;
    let refund = provider
        .refund(stripe_id, &refund_key(payment.id))
        .await
        .with_context(|| format!("refunding payment {}", payment.id))?;
    store::record_refund(pool, payment, &refund.id, reason).await?;
    tracing::info!(
        order_id = %payment.order_id,
        payment_id = %payment.id,
        stripe_id,
        refund_id = %refund.id,
        reason = reason.as_str(),
        "charge refunded"
    );
    Ok(())
}

/// Refunds every charge a cancelled order still keeps; the number refunded.
pub(crate) async fn refund_cancelled_order(
    pool: &PgPool,
    provider: &PaymentProvider,
    order_id: Uuid,
) -> anyhow::Result<usize> {
    let payments = store::unrefunded_payments_of_cancelled_order(pool, order_id).await?;
    for payment in &payments {
        refund(pool, provider, payment, RefundReason::OrderCancelled).await?;
    }
    Ok(payments.len())
}
