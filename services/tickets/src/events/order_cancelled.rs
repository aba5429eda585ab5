//! `order.cancelled`: release the ticket the order held.

use anyhow::Context as _;
use sqlx::PgPool;

use common::events::{OrderCancelled, TicketUpdated};
use common::listener::{Delivery, Listener, Outcome};
use common::outbox;

use crate::store;

/// Remembers the cancellation (so that a late order.created of the same
/// order is ignored) and frees the ticket if this order holds it.
pub(crate) struct OrderCancelledListener {
    pool: PgPool,
}

impl OrderCancelledListener {
    pub(crate) fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

impl Listener for OrderCancelledListener {
    type Event = OrderCancelled;

    async fn handle(&self, delivery: Delivery<OrderCancelled>) -> anyhow::Result<Outcome> {
        let order = delivery.event;
        let mut tx = self.pool.begin().await.context("starting a transaction")?;
        // Lock the ticket before recording the cancellation, in the same
        // order as the order.created handler, so the two never deadlock and
        // a concurrent reservation of this order is either seen here or sees
        // the recorded cancellation.
        let Some(ticket) = store::lock(&mut tx, order.ticket.id).await? else {
            anyhow::bail!(
                "order {} releases ticket {}, which does not exist",
                order.id,
                order.ticket.id
            );
        };
        if !store::remember_cancelled(&mut tx, order.id, ticket.id).await? {
            return Ok(Outcome::Duplicate);
        }
        if ticket.order_id == Some(order.id) {
            let ticket = store::set_order(&mut tx, ticket.id, None, None).await?;
            outbox::enqueue(&mut tx, &TicketUpdated(ticket.snapshot())).await?;
            tracing::info!(ticket_id = %ticket.id, order_id = %order.id, version = ticket.version, "ticket released");
        }
        tx.commit().await.context("committing a cancellation")?;
        Ok(Outcome::Applied)
    }
}
