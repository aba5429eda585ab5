//! `order.completed`: an order of the replica was paid and is complete.

use sqlx::PgPool;

use common::events::OrderCompleted;
use common::listener::{Delivery, Listener, Outcome};

use crate::store;

/// Applies the completion only on top of its predecessor (version − 1), as
/// every versioned replica does: a version the replica already has is a
/// duplicate, an early one (or an order not heard of yet) is `NotYet`.
#[derive(Clone)]
pub struct OrderCompletedListener {
    pool: PgPool,
}

impl OrderCompletedListener {
    /// A listener that applies its events to the payments database.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

impl Listener for OrderCompletedListener {
    type Event = OrderCompleted;

    async fn handle(&self, delivery: Delivery<OrderCompleted>) -> anyhow::Result<Outcome> {
        let event = delivery.event;
        let applied = store::orders::complete(&self.pool, event.id, event.version).await?;
        let stored = if applied {
            None
        } else {
            store::orders::version(&self.pool, event.id).await?
        };
        let outcome = Outcome::for_version(applied, stored, event.version);
        tracing::debug!(order_id = %event.id, version = event.version, ?outcome, "order.completed");
        Ok(outcome)
    }
}
