//! `order.created`: reserve the ticket for the new order.

use anyhow::Context as _;
use sqlx::PgPool;

use common::events::{OrderCreated, TicketUpdated};
use common::listener::{Delivery, Listener, Outcome};
use common::outbox;

use crate::store;

/// Reserves the order's ticket. The ticket stays with an earlier order until
/// that order's cancellation has been handled (`NotYet`), and is never
/// reserved for an order already known to be cancelled.
pub(crate) struct OrderCreatedListener {
    pool: PgPool,
}

impl OrderCreatedListener {
    pub(crate) fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

impl Listener for OrderCreatedListener {
    type Event = OrderCreated;

    async fn handle(&self, delivery: Delivery<OrderCreated>) -> anyhow::Result<Outcome> {
        let order = delivery.event;
        let mut tx = self.pool.begin().await.context("starting a transaction")?;
        // The lock orders this handler against a concurrent cancellation of
        // the same order, which locks the ticket too before looking at it.
        let Some(ticket) = store::lock(&mut tx, order.ticket.id).await? else {
            // The orders service only knows tickets this service published,
            // so this is a bug somewhere: retry, then dead-letter it for a human.
            anyhow::bail!(
                "order {} reserves ticket {}, which does not exist",
                order.id,
                order.ticket.id
            );
        };
        if store::is_cancelled(&mut tx, order.id).await? {
            // Its cancellation overtook it: the order never holds the ticket.
            return Ok(Outcome::Duplicate);
        }
        match ticket.order_id {
            Some(holder) if holder == order.id => return Ok(Outcome::Duplicate),
            // An earlier order still holds it; its order.cancelled is on the
            // way (orders only reserves free tickets), so come back later.
            Some(_) => return Ok(Outcome::NotYet),
            None => {}
        }
        let ticket =
            store::set_order(&mut tx, ticket.id, Some(order.id), Some(order.expires_at)).await?;
        outbox::enqueue(&mut tx, &TicketUpdated(ticket.snapshot())).await?;
        tx.commit().await.context("committing a reservation")?;
        tracing::info!(ticket_id = %ticket.id, order_id = %order.id, version = ticket.version, "ticket reserved");
        Ok(Outcome::Applied)
    }
}
