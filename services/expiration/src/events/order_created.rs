//! `order.created`: a buyer reserved a ticket until `expiresAt`.

use common::events::OrderCreated;
use common::listener::{Delivery, Listener, Outcome};

use crate::jobs::{ExpirationJob, ExpirationJobs, Scheduled};

/// Schedules the order's expiration job. The event is acknowledged only
/// once Redis has stored the job: an error (Redis down) has it redelivered.
/// A repeated `order.created` finds the job already there and changes
/// nothing.
#[derive(Clone)]
pub struct OrderCreatedListener {
    jobs: ExpirationJobs,
}

impl OrderCreatedListener {
    /// A listener that stores its jobs in `jobs`.
    pub fn new(jobs: ExpirationJobs) -> Self {
        Self { jobs }
    }
}

impl Listener for OrderCreatedListener {
    type Event = OrderCreated;

    async fn handle(&self, delivery: Delivery<OrderCreated>) -> anyhow::Result<Outcome> {
        let job = ExpirationJob {
            order_id: delivery.event.id,
            expires_at: delivery.event.expires_at,
        };
        match self.jobs.schedule(&job).await? {
            Scheduled::New => {
                tracing::info!(order_id = %job.order_id, expires_at = %job.expires_at, "expiration scheduled");
                Ok(Outcome::Applied)
            }
            Scheduled::AlreadyScheduled => Ok(Outcome::Duplicate),
        }
    }
}
