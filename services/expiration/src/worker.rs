//! The apalis worker that runs due expiration jobs, as a task of the
//! service's lifecycle. A job is handed out during the second its order
//! expires in, waits for the exact `expiresAt`, then publishes
//! `expiration.complete`, retrying while NATS fails. It ends in error only
//! when the service shuts down first; apalis then keeps it in Redis and runs
//! it again later.
//!
//! When Redis fails, apalis stops the worker; a new one (with a new name,
//! since Redis may still list the old one as alive) starts after a backoff.
//! Jobs the old worker held are handed out again once it is taken for dead.
//!
//! Each published expiration is counted (`expiration_jobs_fired_total`) and
//! its lateness past `expiresAt` measured (`expiration_lateness_seconds`).

use std::time::Duration;

use apalis::prelude::{
    BackendExt as _, BoxDynError, Data, WorkerBuilder, WorkerBuilderExt as _, WorkerError,
};
use chrono::Utc;
use common::bus::Bus;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::SERVICE;
use crate::events::expiration_complete;
use crate::jobs::{ExpirationJob, ExpirationJobs};

/// How often an idle worker asks Redis for due jobs: about the most a job
/// runs late.
const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// Jobs one worker runs at a time; more wait in Redis. While NATS is down
/// this bounds the jobs held in memory, each retrying its publish.
const MAX_CONCURRENT_JOBS: usize = 64;

/// Expiration jobs that published their `expiration.complete` (counter).
pub(crate) const JOBS_FIRED: &str = "expiration_jobs_fired_total";
/// Seconds from an order's `expiresAt` to the publication of its
/// `expiration.complete` (histogram).
pub(crate) const LATENESS: &str = "expiration_lateness_seconds";

/// Backoff between publish attempts of a job while NATS fails.
const MIN_PUBLISH_BACKOFF: Duration = Duration::from_millis(100);
const MAX_PUBLISH_BACKOFF: Duration = Duration::from_secs(5);

/// Backoff between restarts of a worker that failed (Redis unreachable).
const MIN_RESTART_BACKOFF: Duration = Duration::from_millis(200);
const MAX_RESTART_BACKOFF: Duration = Duration::from_secs(5);

/// What a job needs to do its work, shared by every job of a worker.
#[derive(Clone)]
struct Expirer {
    bus: Bus,
    shutdown: CancellationToken,
}

/// Runs workers over `jobs` until `shutdown`, replacing one that fails.
/// On shutdown the worker takes no new job, lets the jobs in hand finish or
/// give up, and records their outcome in Redis before this returns.
pub(crate) async fn run(jobs: ExpirationJobs, bus: Bus, shutdown: CancellationToken) {
    let expirer = Expirer {
        bus,
        shutdown: shutdown.clone(),
    };
    let mut backoff = MIN_RESTART_BACKOFF;
    while !shutdown.is_cancelled() {
        let name = format!("{SERVICE}-{}", Uuid::now_v7().simple());
        let started = Instant::now();
        let worker = WorkerBuilder::new(name.as_str())
            .backend(jobs.storage().poll_with_interval(POLL_INTERVAL))
            .concurrency(MAX_CONCURRENT_JOBS)
            .data(expirer.clone())
            .build(expire);
        let stop = shutdown.clone();
        tracing::info!(worker = %name, "expiration worker starting");
        let outcome = worker
            .run_until(async move {
                stop.cancelled().await;
                Ok::<(), WorkerError>(())
            })
            .await;
        match outcome {
            Ok(()) => break,
            Err(e) if shutdown.is_cancelled() => {
                tracing::debug!(worker = %name, error = %e, "expiration worker ended while shutting down");
                break;
            }
            Err(e) => {
                if started.elapsed() > MAX_RESTART_BACKOFF {
                    backoff = MIN_RESTART_BACKOFF;
                }
                tracing::warn!(worker = %name, error = %e, retry_in = ?backoff, "expiration worker failed; starting another");
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_RESTART_BACKOFF);
            }
        }
    }
    tracing::info!("expiration worker stopped");
}

/// The job function apalis calls with a due job.
async fn expire(job: ExpirationJob, expirer: Data<Expirer>) -> Result<(), BoxDynError> {
    expirer.expire(&job).await.map_err(|e| {
        tracing::info!(order_id = %job.order_id, reason = format!("{e:#}"), "expiration job interrupted");
        e.into()
    })
}

impl Expirer {
    /// Publishes the job's `expiration.complete` once `expires_at` has
    /// passed, retrying while NATS fails. Fails only if the service shuts
    /// down first: a publish in flight is not waited for, and whether or not
    /// that message got stored, the next run publishes the same id again.
    async fn expire(&self, job: &ExpirationJob) -> anyhow::Result<()> {
        // Jobs are handed out by whole seconds, so a job usually arrives a
        // little before its time (or another replica's clock runs ahead).
        if let Ok(early) = (job.expires_at - Utc::now()).to_std() {
            self.unless_shutdown(tokio::time::sleep(early))
                .await
                .ok_or_else(|| interrupted(job))?;
        }
        let mut backoff = MIN_PUBLISH_BACKOFF;
        let mut streams_ready = true;
        loop {
            let attempt = async {
                // A broker that lost its state gets the streams back first.
                if !streams_ready {
                    self.bus.ensure_streams().await?;
                }
                expiration_complete::publish(&self.bus, job.order_id).await
            };
            match self
                .unless_shutdown(attempt)
                .await
                .ok_or_else(|| interrupted(job))?
            {
                Ok(event_id) => {
                    let late = Utc::now() - job.expires_at;
                    let late_ms = late.num_milliseconds();
                    record_fired(late);
                    tracing::info!(order_id = %job.order_id, %event_id, late_ms, "order expired; expiration.complete published");
                    return Ok(());
                }
                Err(e) => {
                    streams_ready = false;
                    tracing::warn!(order_id = %job.order_id, error = format!("{e:#}"), retry_in = ?backoff, "cannot publish expiration.complete; retrying");
                }
            }
            self.unless_shutdown(tokio::time::sleep(backoff))
                .await
                .ok_or_else(|| interrupted(job))?;
            backoff = (backoff * 2).min(MAX_PUBLISH_BACKOFF);
        }
    }

    /// The output of `work`, or `None` if the service shuts down first.
    async fn unless_shutdown<T>(&self, work: impl Future<Output = T>) -> Option<T> {
        tokio::select! {
            () = self.shutdown.cancelled() => None,
            output = work => Some(output),
        }
    }
}

/// Counts a published expiration and how long after its `expiresAt` it
/// went out.
fn record_fired(late: chrono::TimeDelta) {
    metrics::counter!(JOBS_FIRED).increment(1);
    metrics::histogram!(LATENESS).record(late.as_seconds_f64());
}

/// Installs the process's metrics recorder and describes the worker's
/// metrics, before the first job can run.
pub(crate) fn describe_metrics() {
    common::metrics::install();
    metrics::describe_counter!(
        JOBS_FIRED,
        "Expiration jobs that published their expiration.complete"
    );
    metrics::describe_histogram!(
        LATENESS,
        metrics::Unit::Seconds,
        "Time from an order's expiresAt to the publication of its expiration.complete"
    );
}

fn interrupted(job: &ExpirationJob) -> anyhow::Error {
    anyhow::anyhow!(
        "the service is shutting down; the expiration job of order {} runs again later",
        job.order_id
    )
}
