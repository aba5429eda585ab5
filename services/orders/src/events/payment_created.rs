//! `payment.created`: an order was paid.

use anyhow::Context as _;
use sqlx::PgPool;

use common::events::{OrderStatus, PaymentCreated};
use common::inbox;
use common::listener::{Delivery, Listener, Outcome};

use crate::SERVICE;
use crate::store;

/// Completes a paid order and publishes `order.completed` through the
/// outbox; its ticket stays held for good. A payment for an order that was cancelled in the
/// meantime leaves the order cancelled: the payments service refunds such
/// late payments. De-duplicated by event id in the inbox.
#[derive(Clone)]
pub struct PaymentCreatedListener {
    pool: PgPool,
}

impl PaymentCreatedListener {
    /// A listener that applies its events to the orders database.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

impl Listener for PaymentCreatedListener {
    type Event = PaymentCreated;

    /// Errors (and so is retried) for an order this service does not know.
    async fn handle(&self, delivery: Delivery<PaymentCreated>) -> anyhow::Result<Outcome> {
        let payment = delivery.event;
        let order_id = payment.order_id;
        let mut tx = self.pool.begin().await.context("starting a transaction")?;
        if !inbox::first_delivery(&mut tx, SERVICE, delivery.id).await? {
            return Ok(Outcome::Duplicate);
        }
        let order = store::lock_order(&mut tx, order_id)
            .await?
            .with_context(|| format!("payment for unknown order {order_id}"))?;
        match order.status {
            OrderStatus::Created | OrderStatus::AwaitingPayment => {
                let version = store::complete_order(&mut tx, &order).await?;
                tracing::info!(%order_id, payment_id = %payment.id, version, "order paid and complete");
            }
            OrderStatus::Cancelled => {
                tracing::warn!(
                    %order_id,
                    payment_id = %payment.id,
                    stripe_id = %payment.stripe_id,
                    "payment for a cancelled order; it stays cancelled and payments refunds it"
                );
            }
            OrderStatus::Complete => {}
        }
        tx.commit().await.context("committing a payment")?;
        Ok(Outcome::Applied)
    }
}
