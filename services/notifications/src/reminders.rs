//! The reminder scheduler: a reservation's reminder is a row with a due
//! time, written with the order; this task polls the rows that are due
//! (`FOR UPDATE SKIP LOCKED`, so replicas share them and a restart loses
//! none) and writes the reminder mail if the order is still unpaid and not
//! cancelled, then drops the row.

use std::time::Duration;

use anyhow::Context as _;
use chrono::Utc;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::events::Links;
use crate::mails::{Facts, MailKind, render};
use crate::store;

/// Reminders handled per transaction.
const BATCH: i64 = 100;

/// Writes the reminders that are due every `interval` until `shutdown`.
pub async fn run(pool: PgPool, links: Links, interval: Duration, shutdown: CancellationToken) {
    while !shutdown.is_cancelled() {
        match remind_due(&pool, &links).await {
            Ok(n) if n > 0 => tracing::info!(reminders = n, "reminders written"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = format!("{e:#}"), "reminders failed; retrying"),
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(interval) => {}
        }
    }
    tracing::info!("reminder scheduler stopped");
}

/// Handles the reminders due now; returns how many mails it wrote.
pub async fn remind_due(pool: &PgPool, links: &Links) -> anyhow::Result<usize> {
    let mut tx = pool.begin().await.context("starting a transaction")?;
    let due = store::due_reminders(&mut tx, BATCH).await?;
    let mut written = 0;
    for order_id in due {
        let order = store::order_facts(&mut tx, order_id).await?;
        store::drop_reminder(&mut tx, order_id).await?;
        let Some(order) = order else { continue };
        if order.paid || order.status == "cancelled" || order.expires_at <= Utc::now() {
            continue;
        }
        let link = links.order(order.id);
        let facts = Facts::order(order.id, &order.title, order.price, order.expires_at, link);
        let mail = render(MailKind::Reminder, order.id, &order.buyer_email, &facts)?;
        if store::insert_mail(&mut tx, &mail).await? {
            written += 1;
        }
    }
    tx.commit().await.context("committing reminders")?;
    Ok(written)
}
