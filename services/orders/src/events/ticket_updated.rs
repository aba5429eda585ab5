//! `ticket.updated`: a ticket of the replica changes, strictly in version order.

use anyhow::Context as _;
use sqlx::{PgConnection, PgPool};

use common::events::{TicketSnapshot, TicketUpdated};
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
        let mut db = self.pool.acquire().await.context("taking a connection")?;
        apply(&mut db, &delivery.event.0).await
    }

    const BATCHES: bool = true;

    /// The same rule, for the events queued in a lane, in their order and in
    /// one transaction: v and v + 1 of one ticket in a run both apply.
    async fn handle_batch(
        &self,
        deliveries: Vec<Delivery<TicketUpdated>>,
    ) -> anyhow::Result<Vec<Outcome>> {
        let mut tx = self.pool.begin().await.context("starting a transaction")?;
        let mut outcomes = Vec::with_capacity(deliveries.len());
        for delivery in deliveries {
            outcomes.push(apply(&mut tx, &delivery.event.0).await?);
        }
        tx.commit().await.context("committing ticket updates")?;
        Ok(outcomes)
    }
}

async fn apply(db: &mut PgConnection, ticket: &TicketSnapshot) -> anyhow::Result<Outcome> {
    let applied = store::update_ticket(&mut *db, ticket).await?;
    let stored = if applied {
        None
    } else {
        store::ticket_version(&mut *db, ticket.id).await?
    };
    let outcome = Outcome::for_version(applied, stored, ticket.version);
    tracing::debug!(ticket_id = %ticket.id, version = ticket.version, ?outcome, "ticket.updated");
    Ok(outcome)
}
