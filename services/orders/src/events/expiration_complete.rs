//! `expiration.complete`: an order's reservation time is up.

use anyhow::Context as _;
use sqlx::PgPool;

use common::events::{ExpirationComplete, OrderStatus};
use common::inbox;
use common::listener::{Delivery, Listener, Outcome};

use crate::SERVICE;
use crate::store;

/// Cancels an order that is still unpaid when its time is up, and emits
/// `order.cancelled` so the ticket is released. A paid or already cancelled
/// order is left as it is, with no event. The event carries no version, so
/// it is de-duplicated by its id in the inbox, in the same transaction.
#[derive(Clone)]
pub struct ExpirationCompleteListener {
    pool: PgPool,
}

impl ExpirationCompleteListener {
    /// A listener that applies its events to the orders database.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

impl Listener for ExpirationCompleteListener {
    type Event = ExpirationComplete;

    /// Errors (and so is retried) for an order this service does not know.
    async fn handle(&self, delivery: Delivery<ExpirationComplete>) -> anyhow::Result<Outcome> {
        let order_id = delivery.event.order_id;
        let mut tx = self.pool.begin().await.context("starting a transaction")?;
        if !inbox::first_delivery(&mut tx, SERVICE, delivery.id).await? {
            return Ok(Outcome::Duplicate);
        }
        let order = store::lock_order(&mut tx, order_id)
            .await?
            .with_context(|| format!("expiration of unknown order {order_id}"))?;
        match order.status {
            OrderStatus::Complete | OrderStatus::Cancelled => {
                // Committed anyway, to record the event in the inbox.
                tx.commit()
                    .await
                    .context("committing an ignored expiration")?;
            }
            OrderStatus::Created | OrderStatus::AwaitingPayment => {
                let version = store::cancel_order(&mut tx, &order).await?;
                tx.commit().await.context("committing an expiration")?;
                tracing::info!(%order_id, version, "order expired and cancelled");
            }
        }
        Ok(Outcome::Applied)
    }
}
