//! The expiration jobs, kept in Redis by apalis: one per order, due at the
//! order's `expiresAt`. Because Redis holds them, they outlive a restart of
//! the service, and a job whose time passed while no replica was running is
//! due at once when one starts. Handing a due job to a worker is one atomic
//! step in Redis, so replicas share the jobs rather than each running all.

use std::time::Duration;

use anyhow::Context as _;
use apalis::prelude::{FetchById as _, Status, TaskBuilder, TaskId};
use apalis_redis::{Client, Config, ConnectionManager, RedisStorage};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::events::expiration_complete;

/// How often a worker tells Redis it is alive. A worker silent for
/// `HEARTBEAT × MISSED_HEARTBEATS` is taken for dead (e.g. its process was
/// killed) and the jobs it held are handed to another worker.
const HEARTBEAT: Duration = Duration::from_secs(5);
const MISSED_HEARTBEATS: usize = 3;

/// What a job carries: the order to expire and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExpirationJob {
    pub order_id: Uuid,
    pub expires_at: DateTime<Utc>,
}

impl ExpirationJob {
    /// The whole second at which the job is handed to a worker. apalis
    /// schedules by whole seconds; the job is handed out within the second
    /// its order expires in, and waits for the exact instant itself, so it
    /// runs neither before `expires_at` nor a second after it.
    fn due_at(&self) -> u64 {
        // A time before 1970 is simply overdue: apalis runs 0 at once.
        u64::try_from(self.expires_at.timestamp()).unwrap_or(0)
    }
}

/// The job id of an order's expiration: the id of the event it publishes,
/// so one order can never have two jobs, and a job is easy to find from
/// its event.
pub fn job_id(order_id: Uuid) -> TaskId {
    TaskId::from_string(expiration_complete::event_id(order_id).to_string())
}

/// What [`ExpirationJobs::schedule`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheduled {
    /// The job was stored.
    New,
    /// The order already had its job; nothing was stored.
    AlreadyScheduled,
}

/// The queue of expiration jobs in Redis. Cheap to clone.
#[derive(Clone)]
pub struct ExpirationJobs {
    conn: ConnectionManager,
    config: Config,
}

impl ExpirationJobs {
    /// The queue whose Redis keys start with `queue`, in the Redis at
    /// `redis_url`. Nothing is connected yet: the connection is made on
    /// first use and remade after an outage, so that the service starts
    /// while Redis is down (and says so in its readiness).
    pub fn new(redis_url: &str, queue: &str) -> anyhow::Result<Self> {
        let client = Client::open(redis_url).context("parsing the Redis URL")?;
        let conn = client
            .get_connection_manager_lazy(Default::default())
            .context("preparing the Redis connection")?;
        let config = Config::default()
            .queue(queue)
            .heartbeat_interval(HEARTBEAT)
            .missed_heartbeats(MISSED_HEARTBEATS)
            // Nobody subscribes to apalis's pub/sub notifications.
            .emit_events(false);
        Ok(Self { conn, config })
    }

    /// Stores `job`, due at its `expires_at` (at once if that has passed).
    /// Returns only once Redis has stored it. An order that already has its
    /// job is left as it is: [`Scheduled::AlreadyScheduled`].
    pub async fn schedule(&self, job: &ExpirationJob) -> anyhow::Result<Scheduled> {
        // The same encoding as apalis's JSON codec, which decodes it for the worker.
        let args = serde_json::to_vec(job).context("encoding an expiration job")?;
        let task = TaskBuilder::new(args)
            .task_id(job_id(job.order_id))
            .run_at_timestamp(job.due_at())
            .build();
        let mut conn = self.conn.clone();
        let (enqueued, scheduled) =
            apalis_redis::queries::push_tasks(&mut conn, &self.config, &[task])
                .await
                .context("storing an expiration job in Redis")?;
        Ok(if enqueued + scheduled == 0 {
            Scheduled::AlreadyScheduled
        } else {
            Scheduled::New
        })
    }

    /// Where the job of `order_id` stands (`Pending` until it has run,
    /// `Done` once its event is out), or `None` when the order has no job.
    pub async fn status(&self, order_id: Uuid) -> anyhow::Result<Option<Status>> {
        let task = self
            .storage()
            .fetch_by_id(&job_id(order_id))
            .await
            .context("looking up an expiration job in Redis")?;
        Ok(task.map(|task| task.ctx().status()))
    }

    /// Fails unless Redis answers, for the readiness probe.
    pub async fn ping(&self) -> anyhow::Result<()> {
        // A lookup of an id no order has: one round trip, nothing to decode.
        self.status(Uuid::nil()).await.map(|_| ())
    }

    /// The apalis backend over this queue, for a worker.
    pub(crate) fn storage(&self) -> RedisStorage<ExpirationJob> {
        RedisStorage::new(self.conn.clone()).with_config(self.config.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job_expiring(at: &str) -> ExpirationJob {
        ExpirationJob {
            order_id: Uuid::now_v7(),
            expires_at: DateTime::parse_from_rfc3339(at)
                .expect("time")
                .with_timezone(&Utc),
        }
    }

    #[test]
    fn a_job_is_handed_out_in_the_second_its_order_expires_in() {
        assert_eq!(
            job_expiring("2026-01-02T03:04:05.999Z").due_at(),
            job_expiring("2026-01-02T03:04:05Z").due_at()
        );
        assert_eq!(job_expiring("2026-01-02T03:04:05Z").due_at(), 1_767_323_045);
    }

    #[test]
    fn a_job_from_before_1970_is_due_at_once() {
        assert_eq!(job_expiring("1969-12-31T23:59:59Z").due_at(), 0);
    }

    #[test]
    fn the_job_id_is_the_event_id_and_depends_only_on_the_order() {
        let order = Uuid::now_v7();
        assert_eq!(job_id(order), job_id(order));
        assert_ne!(job_id(order), job_id(Uuid::now_v7()));
        assert_eq!(
            job_id(order).to_string(),
            expiration_complete::event_id(order).to_string()
        );
    }

    #[test]
    fn the_job_payload_is_camel_case_json() {
        let job = job_expiring("2026-01-02T03:04:05Z");
        assert_eq!(
            serde_json::to_value(&job).expect("json"),
            serde_json::json!({"orderId": job.order_id, "expiresAt": "2026-01-02T03:04:05Z"})
        );
    }
}
