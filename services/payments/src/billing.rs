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
//!
//! Each step reads what it needs under the lock, asks a pure function what
//! to do ([`ClaimDecision::decide`], [`decide`]), and applies the answer.

use std::time::Duration;

use anyhow::Context as _;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use uuid::Uuid;

use common::events::{OrderStatus, PaymentCreated};
use common::outbox;

use crate::domain::{Order, PaymentStatus, RefundReason, charge_key, refund_key};
use crate::provider::PaymentProvider;
use crate::store::payments::ActivePayment;
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

/// What to do when asked to charge an order, from what the order's row lock
/// shows: its status in the replica and its charge under way or kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClaimDecision {
    Cancelled,
    AlreadyPaid,
    InProgress,
    /// Charge it, first marking failed the attempt `replacing`, a pending
    /// charge that never got an answer (should it have charged after all,
    /// its webhook finds the order paid and refunds it).
    Charge {
        replacing: Option<Uuid>,
    },
}

impl ClaimDecision {
    /// Decides; pure, so that every case is unit-tested.
    pub(crate) fn decide(order: OrderStatus, active: Option<ActivePayment>) -> Self {
        if order == OrderStatus::Cancelled {
            return Self::Cancelled;
        }
        match active {
            None => Self::Charge { replacing: None },
            Some(active) => match active.status {
                PaymentStatus::Succeeded => Self::AlreadyPaid,
                PaymentStatus::Pending if !active.stale => Self::InProgress,
                _ => Self::Charge {
                    replacing: Some(active.id),
                },
            },
        }
    }
}

/// Writes a `pending` payment for `order` unless it is cancelled, paid, or
/// being charged. An attempt pending for longer than the provider can take
/// lost its answer; it is marked failed and replaced (see
/// [`ClaimDecision::Charge`]).
pub(crate) async fn claim(pool: &PgPool, order: &Order, currency: &str) -> anyhow::Result<Claim> {
    let mut tx = pool.begin().await.context("starting a transaction")?;
    let status = store::orders::lock(&mut tx, order.id)
        .await?
        .context("the order left the replica")?;
    let active = store::payments::active(&mut tx, order.id).await?;
    let replacing = match ClaimDecision::decide(status, active) {
        ClaimDecision::Cancelled => return Ok(Claim::Cancelled),
        ClaimDecision::AlreadyPaid => return Ok(Claim::AlreadyPaid),
        ClaimDecision::InProgress => return Ok(Claim::InProgress),
        ClaimDecision::Charge { replacing } => replacing,
    };
    if let Some(stale) = replacing {
        tracing::warn!(order_id = %order.id, payment_id = %stale, "replacing a charge attempt that never got an answer");
        store::payments::set_status(
            &mut tx,
            stale,
            PaymentStatus::Failed,
            None,
            Some("No answer from the provider was recorded; replaced by a new attempt"),
        )
        .await?;
    }
    let attempt = store::payments::next_attempt(&mut tx, order.id).await?;
    let claimed = Attempt {
        payment_id: Uuid::now_v7(),
        idempotency_key: charge_key(order.id, attempt),
    };
    store::payments::insert(
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

/// What the billing step knows about a successful charge, read under the
/// order's row lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Facts {
    /// The order's status in the replica.
    pub(crate) order: OrderStatus,
    /// The status of the charge's payment row.
    pub(crate) payment: PaymentStatus,
    /// Whether another payment of the order is under way or kept.
    pub(crate) other_active: bool,
}

/// What to do with a successful charge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Keep it: the order is paid.
    Keep,
    /// Give it back.
    Refund(RefundReason),
    /// It was settled before; change nothing.
    AlreadySettled,
}

/// The module's rules for a successful charge: a charge settled before
/// stays as it is; one for a cancelled order is refunded; one that another
/// payment of the order beat (or that was already marked for refunding) is
/// refunded as a duplicate; otherwise it is kept.
pub(crate) fn decide(facts: Facts) -> Decision {
    match facts.payment {
        PaymentStatus::Succeeded | PaymentStatus::Refunded => Decision::AlreadySettled,
        _ if facts.order == OrderStatus::Cancelled => {
            Decision::Refund(RefundReason::OrderCancelled)
        }
        PaymentStatus::Refunding => Decision::Refund(RefundReason::Duplicate),
        PaymentStatus::Pending | PaymentStatus::Failed if facts.other_active => {
            Decision::Refund(RefundReason::Duplicate)
        }
        PaymentStatus::Pending | PaymentStatus::Failed => Decision::Keep,
    }
}

/// Keeps or refunds a successful charge (see [`decide`]). Safe to call
/// again for the same charge: the second call finds it settled.
pub(crate) async fn settle_success(
    pool: &PgPool,
    provider: &PaymentProvider,
    charged: Charged<'_>,
    intent_id: &str,
) -> anyhow::Result<Settlement> {
    let order_id = charged.order_id();
    let mut tx = pool.begin().await.context("starting a transaction")?;
    let order_status = store::orders::lock(&mut tx, order_id)
        .await?
        .with_context(|| {
            format!("a charge for order {order_id}, which the replica does not know yet")
        })?;
    let payment = match charged {
        Charged::Payment { id, .. } => store::payments::lock(&mut tx, id)
            .await?
            .with_context(|| format!("unknown payment {id}"))?,
        Charged::Untracked {
            amount, currency, ..
        } => insert_untracked(&mut tx, order_id, amount, currency, intent_id).await?,
    };
    let facts = Facts {
        order: order_status,
        payment: payment.status,
        other_active: store::payments::has_other_active(&mut tx, order_id, payment.id).await?,
    };
    match decide(facts) {
        // Nothing was written: dropping the transaction releases the locks.
        Decision::AlreadySettled => Ok(Settlement::AlreadySettled {
            payment_id: payment.id,
            status: payment.status,
        }),
        Decision::Keep => keep(tx, &payment, intent_id).await,
        Decision::Refund(reason) => give_back(pool, provider, tx, payment, intent_id, reason).await,
    }
}

/// Applies [`Decision::Keep`]: the payment succeeds and `payment.created`
/// goes to the outbox, in the transaction that holds the order's lock.
async fn keep(
    mut tx: Transaction<'_, Postgres>,
    payment: &Payment,
    intent_id: &str,
) -> anyhow::Result<Settlement> {
    store::payments::set_status(
        &mut tx,
        payment.id,
        PaymentStatus::Succeeded,
        Some(intent_id),
        None,
    )
    .await?;
    let event = PaymentCreated {
        id: payment.id,
        order_id: payment.order_id,
        stripe_id: intent_id.to_string(),
    };
    outbox::enqueue(&mut tx, &event).await?;
    tx.commit().await.context("committing a payment")?;
    tracing::info!(order_id = %payment.order_id, payment_id = %payment.id, stripe_id = intent_id, "order paid");
    Ok(Settlement::Paid {
        payment_id: payment.id,
    })
}

/// Applies [`Decision::Refund`]: the payment is marked `refunding` and the
/// lock released before the provider is called; should the refund fail,
/// the reconciler finds the payment `refunding` and retries it.
async fn give_back(
    pool: &PgPool,
    provider: &PaymentProvider,
    mut tx: Transaction<'_, Postgres>,
    payment: Payment,
    intent_id: &str,
    reason: RefundReason,
) -> anyhow::Result<Settlement> {
    store::payments::set_status(
        &mut tx,
        payment.id,
        PaymentStatus::Refunding,
        Some(intent_id),
        None,
    )
    .await?;
    tx.commit().await.context("committing a charge to refund")?;
    tracing::warn!(order_id = %payment.order_id, payment_id = %payment.id, stripe_id = intent_id, reason = reason.as_str(), "charge not kept; refunding it");
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

/// Gives a row to a charge no payment row knows. Inserted as failed,
/// outside the one-active-payment index; [`decide`] moves it on like any
/// other charge.
async fn insert_untracked(
    conn: &mut PgConnection,
    order_id: Uuid,
    amount: i64,
    currency: &str,
    intent_id: &str,
) -> anyhow::Result<Payment> {
    let id = Uuid::now_v7();
    let attempt = store::payments::next_attempt(conn, order_id).await?;
    let key = format!("intent-{intent_id}");
    store::payments::insert(
        conn,
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
    Ok(Payment {
        id,
        order_id,
        status: PaymentStatus::Failed,
        amount,
        stripe_id: Some(intent_id.to_string()),
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
    store::refunds::record(pool, payment, &refund.id, reason).await?;
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
    let payments = store::refunds::kept_by_cancelled_order(pool, order_id).await?;
    for payment in &payments {
        refund(pool, provider, payment, RefundReason::OrderCancelled).await?;
    }
    Ok(payments.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    use OrderStatus::{AwaitingPayment, Cancelled, Complete, Created};
    use PaymentStatus::{Failed, Pending, Refunded, Refunding, Succeeded};

    const ORDER_STATUSES: [OrderStatus; 4] = [Created, AwaitingPayment, Complete, Cancelled];
    const PAYMENT_STATUSES: [PaymentStatus; 5] = [Pending, Succeeded, Failed, Refunding, Refunded];

    fn facts(order: OrderStatus, payment: PaymentStatus, other_active: bool) -> Facts {
        Facts {
            order,
            payment,
            other_active,
        }
    }

    #[test]
    fn a_charge_is_kept_or_refunded_by_the_rules() {
        let keep = Decision::Keep;
        let settled = Decision::AlreadySettled;
        let cancelled = Decision::Refund(RefundReason::OrderCancelled);
        let duplicate = Decision::Refund(RefundReason::Duplicate);
        for (facts, expected) in [
            // The charge of a payment settled before is left as it is, even
            // for a cancelled order (its refund is the listener's).
            (facts(Created, Succeeded, false), settled),
            (facts(Cancelled, Succeeded, false), settled),
            (facts(Created, Refunded, true), settled),
            (facts(Cancelled, Refunded, false), settled),
            // A charge for a cancelled order is given back.
            (facts(Cancelled, Pending, false), cancelled),
            (facts(Cancelled, Failed, false), cancelled),
            (facts(Cancelled, Refunding, true), cancelled),
            // One already marked for refunding is refunded again.
            (facts(Created, Refunding, false), duplicate),
            // One that another payment of the order beat is a duplicate.
            (facts(Created, Pending, true), duplicate),
            (facts(AwaitingPayment, Failed, true), duplicate),
            // Otherwise it is the order's payment.
            (facts(Created, Pending, false), keep),
            (facts(AwaitingPayment, Pending, false), keep),
            (facts(Complete, Failed, false), keep),
        ] {
            assert_eq!(decide(facts), expected, "{facts:?}");
        }
    }

    #[test]
    fn no_charge_for_a_cancelled_order_is_ever_kept() {
        for payment in PAYMENT_STATUSES {
            for other_active in [false, true] {
                let facts = facts(Cancelled, payment, other_active);
                assert_ne!(decide(facts), Decision::Keep, "{facts:?}");
            }
        }
    }

    #[test]
    fn no_charge_is_kept_beside_another_active_payment() {
        for order in ORDER_STATUSES {
            for payment in PAYMENT_STATUSES {
                let facts = facts(order, payment, true);
                assert_ne!(decide(facts), Decision::Keep, "{facts:?}");
            }
        }
    }

    fn active(status: PaymentStatus, stale: bool) -> Option<ActivePayment> {
        Some(ActivePayment {
            id: Uuid::from_u128(7),
            status,
            stale,
        })
    }

    #[test]
    fn an_order_is_charged_by_one_attempt_at_a_time() {
        let stale_one = Uuid::from_u128(7);
        for (order, active, expected) in [
            (Cancelled, None, ClaimDecision::Cancelled),
            (
                Cancelled,
                active(Succeeded, false),
                ClaimDecision::Cancelled,
            ),
            (Cancelled, active(Pending, true), ClaimDecision::Cancelled),
            (
                Created,
                active(Succeeded, false),
                ClaimDecision::AlreadyPaid,
            ),
            (
                Complete,
                active(Succeeded, true),
                ClaimDecision::AlreadyPaid,
            ),
            (Created, active(Pending, false), ClaimDecision::InProgress),
            (
                AwaitingPayment,
                active(Pending, false),
                ClaimDecision::InProgress,
            ),
            (Created, None, ClaimDecision::Charge { replacing: None }),
            (
                Created,
                active(Pending, true),
                ClaimDecision::Charge {
                    replacing: Some(stale_one),
                },
            ),
        ] {
            assert_eq!(
                ClaimDecision::decide(order, active),
                expected,
                "{order:?} {active:?}"
            );
        }
    }
}
