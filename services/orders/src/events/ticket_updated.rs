//! `ticket.updated`: a ticket of the replica changes, strictly in version order.

use sqlx::PgPool;

use common::events::TicketUpdated;
use common::listener::{Delivery, Listener, Outcome};

use crate::store;

/// Applies version v only on top of v − 1. A version the replica already
/// has is a duplicate; a version whose predecessor has not been applied
/// (or whose ticket is not in the replica yet) is `NotYet`, which the
/// runtime redelivers later. So no update is ever lost or applied twice.
#[derive(Clone)]
pub struct TicketUpdatedListener {
    pool: PgPool,
}

impl TicketUpdatedListener {
    /// A listener that applies its events to the orders database.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

impl Listener for TicketUpdatedListener {
    type Event = TicketUpdated;

    async fn handle(&self, delivery: Delivery<TicketUpdated>) -> anyhow::Result<Outcome> {
        let ticket = delivery.event.0;
        let applied = store::update_ticket(&self.pool, &ticket).await?;
        let stored = if applied {
            None
        } else {
            store::ticket_version(&self.pool, ticket.id).await?
        };
        let outcome = Outcome::for_version(applied, stored, ticket.version);
        tracing::debug!(ticket_id = %ticket.id, version = ticket.version, ?outcome, "ticket.updated");
        Ok(outcome)
    }
}
