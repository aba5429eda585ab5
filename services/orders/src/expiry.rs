//! The backstop behind the expiration service. A reservation ends at its
//! `expiresAt`; normally `expiration.complete` cancels it moments later.
//! Should that event never come (the expiration service's Redis lost its
//! jobs, say), two things still end the hold:
//!
//! - reads: an unpaid order read after its `expiresAt` (`GET /api/orders`,
//!   `GET /api/orders/:id`, or a new order for its ticket) is cancelled there
//!   and then, so no read ever reports an overdue reservation as holding its
//!   ticket;
//! - the sweep: every `interval`, orders unpaid for longer than `grace` past
//!   their `expiresAt` are cancelled in batches. Replicas sweep at the same
//!   time safely: each locks the rows it takes and skips the others' rows.
//!
//! Either way the cancellation is the ordinary one (status `cancelled`,
//! version bumped, `order.cancelled` through the outbox), and a later
//! `expiration.complete` for the same order finds it cancelled and does
//! nothing.

use std::time::Duration;

use anyhow::Context as _;
use chrono::Utc;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::config::SweepSettings;
use crate::store;

/// How many overdue orders one sweep transaction cancels.
const BATCH: i64 = 200;

/// Cancels those of the orders `ids`, and the order holding `ticket_id`,
/// that are unpaid past their `expiresAt`; returns how many it cancelled.
pub(crate) async fn expire_overdue(
    pool: &PgPool,
    ids: &[Uuid],
    ticket_id: Option<Uuid>,
) -> anyhow::Result<usize> {
    let mut tx = pool.begin().await.context("starting a transaction")?;
    let overdue = store::lock_overdue_among(&mut tx, ids, ticket_id, Utc::now()).await?;
    for order in &overdue {
        store::cancel_order(&mut tx, order).await?;
        tracing::info!(order_id = %order.id, "overdue order cancelled on read");
    }
    tx.commit()
        .await
        .context("committing overdue cancellations")?;
    Ok(overdue.len())
}

/// One sweep: cancels every order unpaid for longer than `grace` past its
/// `expiresAt`, a batch per transaction; returns how many it cancelled.
pub async fn sweep(pool: &PgPool, grace: Duration) -> anyhow::Result<usize> {
    let grace = chrono::Duration::from_std(grace).context("the grace period is out of range")?;
    let mut cancelled = 0;
    loop {
        let mut tx = pool.begin().await.context("starting a transaction")?;
        let overdue = store::lock_overdue(&mut tx, Utc::now() - grace, BATCH).await?;
        for order in &overdue {
            store::cancel_order(&mut tx, order).await?;
            tracing::warn!(
                order_id = %order.id,
                "order cancelled by the sweep: no expiration.complete arrived in time"
            );
        }
        tx.commit().await.context("committing a sweep")?;
        cancelled += overdue.len();
        if overdue.len() < BATCH as usize {
            return Ok(cancelled);
        }
    }
}

/// Sweeps every `settings.interval` until `shutdown`. A failed sweep (the
/// database away, say) is logged and tried again at the next interval.
pub async fn run_sweeps(pool: PgPool, settings: SweepSettings, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(settings.interval) => {}
        }
        match sweep(&pool, settings.grace).await {
            Ok(0) => {}
            Ok(cancelled) => tracing::info!(cancelled, "sweep cancelled overdue orders"),
            Err(err) => tracing::error!(error = format!("{err:#}"), "sweep failed"),
        }
    }
}
