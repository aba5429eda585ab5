//! `POST /api/payments`: the buyer pays an order with a card token.

use anyhow::Context as _;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use common::ApiError;
use common::error::ApiResult;
use common::events::OrderStatus;
use common::extract::Json;
use common::openapi::{Forbidden, JsonBodyErrors, NotFound, Unauthorized};
use common::session::CurrentUser;

use crate::billing::{self, Charged, Claim, Settlement};
use crate::domain::{NewPaymentBody, PaymentStatus, RefundReason};
use crate::provider::{Charge, ChargeOutcome};
use crate::startup::AppState;
use crate::store;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create))
}

/// A payment of an order.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Payment)]
struct PaymentResponse {
    id: Uuid,
    order_id: Uuid,
    stripe_id: String,
}

fn cancelled() -> ApiError {
    ApiError::BadRequest("Cannot pay for a cancelled order".into())
}

/// Charges the order's price to the card behind `token`.
///
/// 201 with the payment when the charge is kept; 202 when the provider is
/// still processing it (the webhook completes it); 402 with the provider's
/// message when the card is declined (the order stays payable); 400 when
/// the order is cancelled or paid, or was cancelled while the card was
/// being charged (the charge is then refunded).
#[utoipa::path(
    post,
    path = "/api/payments",
    operation_id = "createPayment",
    tag = super::TAG,
    request_body = NewPaymentBody,
    security(("session" = [])),
    responses(
        (status = 201, description = "Charged: the order is paid", body = PaymentResponse),
        (status = 202, description = "The provider is still processing the charge; the webhook completes it", body = PaymentResponse),
        JsonBodyErrors,
        Unauthorized,
        (status = 402, description = "The card was declined (the provider's message); the order stays payable", body = common::error::ErrorBody),
        Forbidden,
        NotFound,
    )
)]
async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    Json(body): Json<NewPaymentBody>,
) -> ApiResult<(StatusCode, Json<PaymentResponse>)> {
    let input = body.parse()?;
    let order = store::orders::find(&state.pool, input.order_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    if order.user_id != user.id {
        return Err(ApiError::Forbidden);
    }
    if order.status == OrderStatus::Cancelled {
        return Err(cancelled());
    }
    if order.expires_at <= Utc::now() {
        return Err(ApiError::BadRequest(
            "The reservation has expired: the order can no longer be paid".into(),
        ));
    }
    let attempt = match billing::claim_waiting(&state.pool, &order, &state.currency).await? {
        Claim::Claimed(attempt) => attempt,
        Claim::AlreadyPaid => return Err(ApiError::BadRequest("Order already paid".into())),
        Claim::InProgress => {
            return Err(ApiError::BadRequest(
                "A payment for this order is already in progress".into(),
            ));
        }
        Claim::Cancelled => return Err(cancelled()),
    };
    let charge = Charge {
        payment_id: attempt.payment_id,
        order_id: order.id,
        amount: order.price,
        currency: state.currency.clone(),
    };
    // On an error nobody knows whether the card was charged: the payment
    // stays pending, and the webhook (or a later attempt) settles it.
    let outcome = state
        .provider
        .charge(&charge, &input.token, &attempt.idempotency_key)
        .await
        .context("charging a card")?;
    let response = |stripe_id: String| PaymentResponse {
        id: attempt.payment_id,
        order_id: order.id,
        stripe_id,
    };
    match outcome {
        ChargeOutcome::Succeeded { intent_id } => {
            let charged = Charged::Payment {
                id: attempt.payment_id,
                order_id: order.id,
            };
            match billing::settle_success(&state.pool, &state.provider, charged, &intent_id).await?
            {
                Settlement::Paid { .. }
                | Settlement::AlreadySettled {
                    status: PaymentStatus::Succeeded,
                    ..
                } => Ok((StatusCode::CREATED, Json(response(intent_id)))),
                Settlement::Refunded {
                    reason: RefundReason::Duplicate,
                    ..
                } => Err(ApiError::BadRequest(
                    "Order already paid; this charge was refunded".into(),
                )),
                Settlement::Refunded { .. } | Settlement::AlreadySettled { .. } => {
                    Err(ApiError::BadRequest(
                        "Order expired while paying; the charge was refunded".into(),
                    ))
                }
            }
        }
        ChargeOutcome::Processing { intent_id } => {
            store::payments::set_pending_intent(&state.pool, attempt.payment_id, &intent_id)
                .await?;
            tracing::info!(order_id = %order.id, payment_id = %attempt.payment_id, %intent_id, "charge processing; the webhook completes it");
            Ok((StatusCode::ACCEPTED, Json(response(intent_id))))
        }
        ChargeOutcome::Declined { message, intent_id } => {
            store::payments::fail_pending(
                &state.pool,
                attempt.payment_id,
                &message,
                intent_id.as_deref(),
            )
            .await?;
            tracing::info!(order_id = %order.id, payment_id = %attempt.payment_id, %message, "card declined");
            Err(ApiError::PaymentRequired(message))
        }
        ChargeOutcome::Rejected { message } => {
            store::payments::fail_pending(&state.pool, attempt.payment_id, &message, None).await?;
            Err(ApiError::BadRequest(message))
        }
    }
}
