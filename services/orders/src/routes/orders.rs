//! `/api/orders`: reserve a ticket, list and read one's orders, cancel one.
//! Every route needs a signed-in user; an order is visible only to its buyer.

use anyhow::Context as _;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, SubsecRound as _, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use common::ApiError;
use common::error::ApiResult;
use common::events::OrderStatus;
use common::extract::{Id, Json};
use common::money::Cents;
use common::openapi::{BadRequest, Forbidden, JsonBodyErrors, NotFound, Unauthorized};
use common::session::CurrentUser;

use crate::domain::{NewOrderBody, Order, Ticket};
use crate::expiry;
use crate::startup::AppState;
use crate::store::{self, NotReserved};

/// The tag of these operations in the API document.
const TAG: &str = "orders";

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, cancel))
}

/// An order: one buyer's reservation of one ticket, until paid or ended.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Order)]
struct OrderResponse {
    id: Uuid,
    user_id: Uuid,
    status: OrderStatus,
    expires_at: DateTime<Utc>,
    version: i64,
    ticket: TicketResponse,
}

/// The reserved ticket, as the order saw it.
#[derive(Serialize, ToSchema)]
#[schema(as = OrderTicket)]
struct TicketResponse {
    id: Uuid,
    title: String,
    /// Rendered as a JSON number of currency units.
    price: Cents,
    version: i64,
}

impl From<Order> for OrderResponse {
    fn from(order: Order) -> Self {
        OrderResponse {
            id: order.id,
            user_id: order.user_id,
            status: order.status,
            expires_at: order.expires_at,
            version: order.version,
            ticket: TicketResponse {
                id: order.ticket.id,
                title: order.ticket.title,
                price: order.ticket.price,
                version: order.ticket.version,
            },
        }
    }
}

/// Reserves a ticket for the signed-in buyer: the order holds it until
/// `expiresAt` unless paid first.
#[utoipa::path(
    post,
    path = "/api/orders",
    operation_id = "createOrder",
    tag = TAG,
    request_body = NewOrderBody,
    security(("session" = [])),
    responses(
        (status = 201, description = "The order; the ticket is reserved", body = OrderResponse),
        (status = 200, description = "The buyer already holds this ticket: their order", body = OrderResponse),
        JsonBodyErrors,
        Unauthorized,
        (status = 404, description = "No ticket has this id", body = common::error::ErrorBody),
    )
)]
async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    Json(body): Json<NewOrderBody>,
) -> ApiResult<(StatusCode, Json<OrderResponse>)> {
    let ticket_id = body.ticket_id()?;
    // A ticket the replica has not heard of yet is unknown here, even if the
    // tickets service has just created it: the buyer can retry in a moment.
    let ticket: Ticket = store::find_ticket(&state.pool, ticket_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    if ticket.user_id == user.id {
        return Err(ApiError::BadRequest(
            "You cannot buy your own ticket".into(),
        ));
    }
    if ticket.event_date.is_some_and(|date| date <= Utc::now()) {
        return Err(ApiError::BadRequest(
            "This event has already taken place".into(),
        ));
    }
    let order = Order {
        id: Uuid::now_v7(),
        user_id: user.id,
        status: OrderStatus::Created,
        expires_at: expires_at(state.order_expiration)?,
        version: 0,
        ticket,
    };
    match store::create_order(&state.pool, &order).await {
        Ok(()) => {}
        Err(NotReserved::TicketHeld) => {
            // A retry of the buyer's own reservation (the first answer was
            // lost) gets that reservation back.
            if let Some(held) = own_reservation(&state, ticket_id, &user).await? {
                return Ok((StatusCode::OK, Json(held.into())));
            }
            // The holder may be a reservation past its time that nothing has
            // cancelled yet: it is cancelled now and the ticket is free.
            if expiry::expire_overdue(&state.pool, &[], Some(ticket_id)).await? == 0 {
                return Err(NotReserved::TicketHeld.into());
            }
            store::create_order(&state.pool, &order).await?;
        }
        Err(err) => return Err(err.into()),
    }
    tracing::info!(order_id = %order.id, ticket_id = %order.ticket.id, "order created");
    Ok((StatusCode::CREATED, Json(order.into())))
}

/// The buyer's own unpaid, unexpired order holding `ticket_id`, if that is
/// what holds it.
async fn own_reservation(
    state: &AppState,
    ticket_id: Uuid,
    user: &CurrentUser,
) -> anyhow::Result<Option<Order>> {
    let held = store::holder_of(&state.pool, ticket_id).await?;
    Ok(held.filter(|order| {
        order.user_id == user.id
            && matches!(
                order.status,
                OrderStatus::Created | OrderStatus::AwaitingPayment
            )
            && !order.is_overdue(Utc::now())
    }))
}

/// Now plus the reservation length, to the millisecond: the response, the
/// stored row and the event then carry the very same instant.
fn expires_at(expiration: std::time::Duration) -> anyhow::Result<DateTime<Utc>> {
    let expiration =
        chrono::Duration::from_std(expiration).context("the order expiration is out of range")?;
    Ok((Utc::now() + expiration).trunc_subsecs(3))
}

/// The signed-in buyer's orders, newest first.
#[utoipa::path(
    get,
    path = "/api/orders",
    operation_id = "listOrders",
    tag = TAG,
    security(("session" = [])),
    responses(
        (status = 200, description = "The buyer's orders", body = Vec<OrderResponse>),
        Unauthorized,
    )
)]
async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
) -> ApiResult<Json<Vec<OrderResponse>>> {
    let mut orders = store::orders_of(&state.pool, user.id).await?;
    let overdue = overdue_ids(&orders);
    if !overdue.is_empty() && expiry::expire_overdue(&state.pool, &overdue, None).await? > 0 {
        orders = store::orders_of(&state.pool, user.id).await?;
    }
    Ok(Json(orders.into_iter().map(OrderResponse::from).collect()))
}

/// One of the signed-in buyer's orders.
#[utoipa::path(
    get,
    path = "/api/orders/{id}",
    operation_id = "showOrder",
    tag = TAG,
    params(("id" = Uuid, Path, description = "The order's id")),
    security(("session" = [])),
    responses(
        (status = 200, description = "The order", body = OrderResponse),
        Unauthorized,
        Forbidden,
        NotFound,
    )
)]
async fn show(
    State(state): State<AppState>,
    user: CurrentUser,
    Id(id): Id,
) -> ApiResult<Json<OrderResponse>> {
    let mut order = store::find_order(&state.pool, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    if order.user_id != user.id {
        return Err(ApiError::Forbidden);
    }
    let overdue = overdue_ids(std::slice::from_ref(&order));
    if !overdue.is_empty() && expiry::expire_overdue(&state.pool, &overdue, None).await? > 0 {
        order = store::find_order(&state.pool, id)
            .await?
            .ok_or(ApiError::NotFound)?;
    }
    Ok(Json(order.into()))
}

/// The orders among `orders` still unpaid after their `expiresAt`.
fn overdue_ids(orders: &[Order]) -> Vec<Uuid> {
    let now = Utc::now();
    orders
        .iter()
        .filter(|order| order.is_overdue(now))
        .map(|order| order.id)
        .collect()
}

/// Cancels the caller's order. Cancelling an already cancelled order changes
/// nothing and emits nothing; a completed (paid) order cannot be cancelled.
#[utoipa::path(
    delete,
    path = "/api/orders/{id}",
    operation_id = "cancelOrder",
    tag = TAG,
    params(("id" = Uuid, Path, description = "The order's id")),
    security(("session" = [])),
    responses(
        (status = 204, description = "The order is cancelled; the ticket is free again"),
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
    )
)]
async fn cancel(
    State(state): State<AppState>,
    user: CurrentUser,
    Id(id): Id,
) -> ApiResult<StatusCode> {
    let mut tx = state.pool.begin().await.context("starting a transaction")?;
    let order = store::lock_order(&mut tx, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    if order.user_id != user.id {
        return Err(ApiError::Forbidden);
    }
    match order.status {
        OrderStatus::Complete => Err(ApiError::BadRequest(
            "Cannot cancel a completed order".into(),
        )),
        OrderStatus::Cancelled => Ok(StatusCode::NO_CONTENT),
        OrderStatus::Created | OrderStatus::AwaitingPayment => {
            let version = store::cancel_order(&mut tx, &order).await?;
            tx.commit().await.context("committing a cancellation")?;
            tracing::info!(order_id = %order.id, version, "order cancelled by its buyer");
            Ok(StatusCode::NO_CONTENT)
        }
    }
}

impl From<NotReserved> for ApiError {
    fn from(err: NotReserved) -> Self {
        match err {
            NotReserved::TicketHeld => ApiError::BadRequest("Ticket is already reserved".into()),
            NotReserved::Failed(err) => ApiError::Internal(err),
        }
    }
}
