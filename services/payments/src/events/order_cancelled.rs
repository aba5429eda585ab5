//! `order.cancelled`: an order of the replica is cancelled for good.

use sqlx::PgPool;

use common::events::OrderCancelled;
use common::listener::{Delivery, Listener, Outcome};

use crate::billing;
use crate::provider::PaymentProvider;
use crate::store;

/// Marks the order cancelled when the event is newer than the replica (the
/// orders service may have bumped the version in between without an event;
/// a cancellation is terminal). An order the replica has not heard of yet
/// is `NotYet`: its `order.created` is still on the way.
///
/// An order cancelled while its `payment.created` was in flight stays
/// cancelled (the orders service never completes a cancelled order), so a
/// charge it kept is refunded here. That runs on duplicates too, so that a
/// refund interrupted before the ack is retried by the redelivery.
#[derive(Clone)]
pub struct OrderCancelledListener {
    pool: PgPool,
    provider: PaymentProvider,
}

impl OrderCancelledListener {
    /// A listener that applies its events to the payments database and
    /// refunds through `provider`.
    pub fn new(pool: PgPool, provider: PaymentProvider) -> Self {
        Self { pool, provider }
    }
}

impl Listener for OrderCancelledListener {
    type Event = OrderCancelled;

    /// Errors (and so is retried) when a refund fails.
    async fn handle(&self, delivery: Delivery<OrderCancelled>) -> anyhow::Result<Outcome> {
        let event = delivery.event;
        let outcome = if store::orders::cancel(&self.pool, event.id, event.version).await? {
            Outcome::Applied
        } else if store::orders::version(&self.pool, event.id)
            .await?
            .is_some()
        {
            Outcome::Duplicate
        } else {
            return Ok(Outcome::NotYet);
        };
        tracing::debug!(order_id = %event.id, version = event.version, ?outcome, "order.cancelled");
        let refunded =
            billing::refund_cancelled_order(&self.pool, &self.provider, event.id).await?;
        if refunded > 0 {
            tracing::warn!(order_id = %event.id, refunded, "order cancelled after it was paid; its charge was refunded");
        }
        Ok(outcome)
    }
}
