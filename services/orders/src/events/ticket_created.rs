//! `ticket.created`: a ticket joins the replica.

use sqlx::PgPool;

use common::events::TicketCreated;
use common::listener::{Delivery, Listener, Outcome};

use crate::store;

/// Adds listed tickets to the replica. A redelivered `ticket.created` finds
/// its row already there and is a duplicate.
#[derive(Clone)]
pub struct TicketCreatedListener {
    pool: PgPool,
}

impl TicketCreatedListener {
    /// A listener that applies its events to the orders database.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

impl Listener for TicketCreatedListener {
    type Event = TicketCreated;

    async fn handle(&self, delivery: Delivery<TicketCreated>) -> anyhow::Result<Outcome> {
        let ticket = delivery.event.0;
        if store::insert_ticket(&self.pool, &ticket).await? {
            tracing::debug!(ticket_id = %ticket.id, "ticket added to the replica");
            Ok(Outcome::Applied)
        } else {
            Ok(Outcome::Duplicate)
        }
    }
}
