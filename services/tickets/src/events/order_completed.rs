//! `order.completed`: the order holding the ticket was paid; the ticket is sold.

use anyhow::Context as _;
use sqlx::PgPool;

use common::events::{OrderCompleted, TicketUpdated};
use common::listener::{Delivery, Listener, Outcome};
use common::outbox;

use crate::store;

/// Marks the order's ticket sold and publishes the new version. A ticket
/// already sold is a duplicate; a ticket this order does not hold yet means
/// its order.created has not been handled here (the orders service only
/// completes orders that hold their ticket), so it comes back later.
pub(crate) struct OrderCompletedListener {
    pool: PgPool,
}

impl OrderCompletedListener {
    pub(crate) fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

impl Listener for OrderCompletedListener {
    type Event = OrderCompleted;

    async fn handle(&self, delivery: Delivery<OrderCompleted>) -> anyhow::Result<Outcome> {
        let order = delivery.event;
        let mut tx = self.pool.begin().await.context("starting a transaction")?;
        let Some(ticket) = store::lock(&mut tx, order.ticket.id).await? else {
            anyhow::bail!(
                "order {} completes ticket {}, which does not exist",
                order.id,
                order.ticket.id
            );
        };
        if ticket.order_id != Some(order.id) {
            return Ok(Outcome::NotYet);
        }
        if ticket.sold_at.is_some() {
            return Ok(Outcome::Duplicate);
        }
        let ticket = store::mark_sold(&mut tx, ticket.id).await?;
        outbox::enqueue(&mut tx, &TicketUpdated(ticket.snapshot())).await?;
        tx.commit().await.context("committing a sale")?;
        tracing::info!(ticket_id = %ticket.id, order_id = %order.id, version = ticket.version, "ticket sold");
        Ok(Outcome::Applied)
    }
}
