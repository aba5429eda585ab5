//! `order.created`: an order joins the replica.

use sqlx::PgPool;

use common::events::OrderCreated;
use common::listener::{Delivery, Listener, Outcome};

use crate::store;

/// Adds new orders to the replica, with their buyer and price. A
/// redelivered `order.created` finds its row already there and is a
/// duplicate.
#[derive(Clone)]
pub struct OrderCreatedListener {
    pool: PgPool,
}

impl OrderCreatedListener {
    /// A listener that applies its events to the payments database.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

impl Listener for OrderCreatedListener {
    type Event = OrderCreated;

    async fn handle(&self, delivery: Delivery<OrderCreated>) -> anyhow::Result<Outcome> {
        let order = delivery.event;
        if store::orders::insert(&self.pool, &order).await? {
            tracing::debug!(order_id = %order.id, "order added to the replica");
            Ok(Outcome::Applied)
        } else {
            Ok(Outcome::Duplicate)
        }
    }
}
