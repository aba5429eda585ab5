//! `POST /api/payments/webhook`: Stripe tells us how payments ended. Signed
//! (see `signature`), delivered at least once, in any order.
//!
//! - `payment_intent.succeeded` settles the charge like the payment route
//!   does: the order is paid (`payment.created`) unless it was paid or
//!   cancelled meanwhile, in which case the charge is refunded. This is how
//!   a charge that was still processing, or whose answer the route lost,
//!   still completes its order.
//! - `payment_intent.payment_failed` marks a pending payment failed; the
//!   order stays payable.
//!
//! Events about PaymentIntents this deployment never made (no order in the
//! metadata, or an order unknown here and older than
//! [`REPLICATION_GRACE`]) are acknowledged, logged at info and counted in
//! `payments_webhook_foreign_events_total`; only an order that may still be
//! on its way to the replica gets a 500, for Stripe to retry.
//!
//! Other event types are acknowledged and ignored. An event id seen before
//! is acknowledged without effect; every effect is idempotent as well, so
//! two concurrent deliveries of one event do no harm.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use common::ApiError;
use common::config::ExposeSecret as _;
use common::error::ApiResult;

use crate::billing::{self, Charged};
use crate::signature;
use crate::startup::AppState;
use crate::store;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(receive))
}

/// The answer to a delivery the service accepted.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = WebhookReceived)]
struct Received {
    received: bool,
    /// Present (true) when this event id was handled before.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    duplicate: Option<bool>,
}

/// The parts of a Stripe event this service reads.
#[derive(Debug, Deserialize)]
struct StripeEvent {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    data: EventData,
}

#[derive(Debug, Deserialize)]
struct EventData {
    object: Value,
}

/// The parts of a PaymentIntent this service reads.
#[derive(Debug, Deserialize)]
struct Intent {
    id: String,
    amount: i64,
    currency: String,
    #[serde(default)]
    metadata: HashMap<String, String>,
    #[serde(default)]
    last_payment_error: Option<LastPaymentError>,
}

#[derive(Debug, Deserialize)]
struct LastPaymentError {
    message: Option<String>,
}

impl Intent {
    fn metadata_id(&self, key: &str) -> Option<Uuid> {
        self.metadata.get(key).and_then(|v| Uuid::parse_str(v).ok())
    }
}

/// Stripe's webhook: a payment intent succeeded or failed. Authenticated by
/// the `Stripe-Signature` header, not by a session.
#[utoipa::path(
    post,
    path = "/api/payments/webhook",
    operation_id = "stripeWebhook",
    tag = super::TAG,
    params(("stripe-signature" = Option<String>, Header, description = "Stripe's signature of the body")),
    request_body(content = Object, description = "A Stripe event", content_type = "application/json"),
    responses(
        (status = 200, description = "Received (or seen before)", body = Received),
        (status = 400, description = "A missing or bad signature, or a malformed event", body = common::error::ErrorBody),
        (status = 413, description = "The body is larger than 64 KiB", body = common::error::ErrorBody),
        (status = 503, description = "Webhooks are not configured: STRIPE_WEBHOOK_SECRET is not set", body = common::error::ErrorBody),
    )
)]
async fn receive(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(secret) = state.webhook_secret.clone() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"errors": [{
                "message": "Stripe webhooks are not configured here: STRIPE_WEBHOOK_SECRET is not set"
            }]})),
        )
            .into_response();
    };
    match handle(&state, secret.expose_secret(), &headers, &body).await {
        Ok(answer) => axum::Json(answer).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn handle(
    state: &AppState,
    secret: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> ApiResult<Received> {
    let header = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    signature::verify(header, body, secret, chrono::Utc::now().timestamp()).map_err(|e| {
        tracing::warn!(reason = e.message(), "webhook refused");
        ApiError::BadRequest(e.message().into())
    })?;
    let event: StripeEvent = serde_json::from_slice(body)
        .map_err(|_| ApiError::BadRequest("Malformed webhook event".into()))?;
    if store::webhook_events::seen(&state.pool, &event.id).await? {
        tracing::debug!(event_id = %event.id, "webhook event seen before; ignored");
        return Ok(Received {
            received: true,
            duplicate: Some(true),
        });
    }
    match event.kind.as_str() {
        "payment_intent.succeeded" => intent_succeeded(state, intent_of(&event)?).await?,
        "payment_intent.payment_failed" => intent_failed(state, intent_of(&event)?).await?,
        other => tracing::debug!(event_id = %event.id, kind = other, "webhook event ignored"),
    }
    store::webhook_events::record(&state.pool, &event.id, &event.kind).await?;
    Ok(Received {
        received: true,
        duplicate: None,
    })
}

/// How long after an order's creation its `order.created` may still be on
/// its way to the replica (a NATS outage included). A succeeded intent for
/// an unknown order younger than this is answered 500, so that Stripe
/// retries it; an older one is not ours.
pub(crate) const REPLICATION_GRACE: chrono::Duration = chrono::Duration::hours(1);

/// Whether `order_id` could be an order of ours that has not reached the
/// replica yet: our order ids are UUIDv7, whose timestamp says when the
/// order was made. Any other id is not one of ours.
fn may_be_replicating(order_id: Uuid, now: chrono::DateTime<chrono::Utc>) -> bool {
    let Some(timestamp) = order_id
        .get_version()
        .filter(|v| *v == uuid::Version::SortRand)
        .and_then(|_| order_id.get_timestamp())
    else {
        return false;
    };
    let (seconds, nanos) = timestamp.to_unix();
    let Some(created) = i64::try_from(seconds)
        .ok()
        .and_then(|s| chrono::DateTime::from_timestamp(s, nanos))
    else {
        return false;
    };
    now - created < REPLICATION_GRACE
}

/// Acknowledges an event about a PaymentIntent this deployment did not
/// make (an account shared with another application, say): retrying it
/// could never change anything.
fn foreign(intent: &Intent, why: &str) {
    tracing::info!(intent_id = %intent.id, reason = why, "webhook event about a payment intent that is not ours; acknowledged");
    metrics::counter!("payments_webhook_foreign_events_total").increment(1);
}

fn intent_of(event: &StripeEvent) -> ApiResult<Intent> {
    serde_json::from_value(event.data.object.clone())
        .map_err(|_| ApiError::BadRequest("Malformed payment intent in webhook event".into()))
}

async fn intent_succeeded(state: &AppState, intent: Intent) -> ApiResult<()> {
    let known =
        store::payments::find_for_intent(&state.pool, intent.metadata_id("paymentId"), &intent.id)
            .await?;
    let charged = match (known, intent.metadata_id("orderId")) {
        (Some(payment), _) => Charged::Payment {
            id: payment.id,
            order_id: payment.order_id,
        },
        (None, Some(order_id)) => {
            if store::orders::version(&state.pool, order_id)
                .await?
                .is_none()
                && !may_be_replicating(order_id, chrono::Utc::now())
            {
                foreign(&intent, "its order is unknown here");
                return Ok(());
            }
            // Unknown but recent: the order may still be on its way to the
            // replica, and settling then fails (500) so that Stripe retries.
            Charged::Untracked {
                order_id,
                amount: intent.amount,
                currency: &intent.currency,
            }
        }
        (None, None) => {
            foreign(&intent, "it names no order");
            return Ok(());
        }
    };
    let settlement =
        billing::settle_success(&state.pool, &state.provider, charged, &intent.id).await?;
    tracing::info!(intent_id = %intent.id, ?settlement, "payment_intent.succeeded settled");
    Ok(())
}

async fn intent_failed(state: &AppState, intent: Intent) -> ApiResult<()> {
    let Some(payment) =
        store::payments::find_for_intent(&state.pool, intent.metadata_id("paymentId"), &intent.id)
            .await?
    else {
        foreign(&intent, "no payment of ours made it");
        return Ok(());
    };
    let message = intent
        .last_payment_error
        .and_then(|e| e.message)
        .unwrap_or_else(|| "The payment failed".into());
    if store::payments::fail_pending(&state.pool, payment.id, &message, Some(&intent.id)).await? {
        tracing::info!(order_id = %payment.order_id, payment_id = %payment.id, %message, "payment failed; the order stays payable");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_recent_uuid_v7_may_be_an_order_still_replicating() {
        let now = chrono::Utc::now();
        assert!(may_be_replicating(Uuid::now_v7(), now));
        assert!(!may_be_replicating(
            Uuid::now_v7(),
            now + REPLICATION_GRACE + chrono::Duration::seconds(1)
        ));
        assert!(!may_be_replicating(Uuid::new_v4(), now));
        assert!(!may_be_replicating(Uuid::nil(), now));
    }
}
