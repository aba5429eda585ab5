//! The reconciler: a background task that refunds charges that must be
//! given back but were not, because the refund failed (the provider was
//! down) or the process stopped between keeping a charge and refunding it.
//! The route, the webhook and the `order.cancelled` listener refund at once;
//! this is the backstop that makes "never a charge without a ticket" hold
//! even when they could not.

use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::billing;
use crate::provider::PaymentProvider;
use crate::store;

/// How often the reconciler looks for refunds due.
pub const INTERVAL: Duration = Duration::from_secs(60);

/// How long a charge waits before the reconciler takes it over, so that it
/// does not race the path that is refunding it right now.
pub const GRACE_SECONDS: f64 = 30.0;

/// Looks for refunds due every [`INTERVAL`] until `shutdown`.
pub async fn run(pool: PgPool, provider: PaymentProvider, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(INTERVAL) => {}
        }
        if let Err(e) = pass(&pool, &provider, GRACE_SECONDS).await {
            tracing::warn!(
                error = format!("{e:#}"),
                "reconciler pass failed; retrying later"
            );
        }
    }
    tracing::info!("reconciler stopped");
}

/// Refunds the charges due for at least `grace_seconds`; returns how many
/// were refunded. One failing refund does not stop the others.
pub async fn pass(
    pool: &PgPool,
    provider: &PaymentProvider,
    grace_seconds: f64,
) -> anyhow::Result<usize> {
    let due = store::refunds::due(pool, grace_seconds).await?;
    let mut refunded = 0;
    for item in due {
        match billing::refund(pool, provider, &item.payment, item.reason).await {
            Ok(()) => refunded += 1,
            Err(e) => tracing::warn!(
                payment_id = %item.payment.id,
                error = format!("{e:#}"),
                "refund failed; the reconciler will retry"
            ),
        }
    }
    Ok(refunded)
}
