//! `ticket.created`: a ticket joins the replica.

use sqlx::PgPool;

use common::events::TicketCreated;
use common::listener::{Delivery, Listener, Outcome};

use crate::store;

/// Adds listed tickets to the replica. A redelivered `ticket.created` finds
/// its row already there and is a duplicate. During a flash sale of
/// listings the events queued in a lane go in one statement (one commit).
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

    const BATCHES: bool = true;

    async fn handle_batch(
        &self,
        deliveries: Vec<Delivery<TicketCreated>>,
    ) -> anyhow::Result<Vec<Outcome>> {
        let tickets: Vec<_> = deliveries.into_iter().map(|d| d.event.0).collect();
        let mut inserted = store::insert_tickets(&self.pool, &tickets).await?;
        // A ticket listed twice in the run is applied by its first delivery.
        Ok(tickets
            .iter()
            .map(
                |ticket| match inserted.iter().position(|id| *id == ticket.id) {
                    Some(at) => {
                        inserted.swap_remove(at);
                        Outcome::Applied
                    }
                    None => Outcome::Duplicate,
                },
            )
            .collect())
    }
}
