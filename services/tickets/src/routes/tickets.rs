//! `/api/tickets`: list free tickets, show one, list one for sale, edit one.
//! Every change is written together with its event in one transaction.

use anyhow::Context as _;
use axum::Router;
use axum::extract::State;
use axum::http::header::LINK;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::routing::get;
use serde::Serialize;
use uuid::Uuid;

use common::ApiError;
use common::error::ApiResult;
use common::events::{TicketCreated, TicketUpdated};
use common::extract::{Id, Json, Query};
use common::money::Cents;
use common::outbox;
use common::session::CurrentUser;

use crate::domain::{PageParams, Ticket, TicketBody};
use crate::startup::AppState;
use crate::store;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/tickets", get(list).post(create))
        .route("/api/tickets/{id}", get(show).put(update))
}

/// A ticket as the API renders it: the price as a JSON number of currency
/// units, `orderId` only while the ticket is reserved.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct TicketResponse {
    id: Uuid,
    title: String,
    price: Cents,
    user_id: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    order_id: Option<Uuid>,
    version: i64,
}

impl From<Ticket> for TicketResponse {
    fn from(ticket: Ticket) -> Self {
        Self {
            id: ticket.id,
            title: ticket.title,
            price: ticket.price,
            user_id: ticket.user_id,
            order_id: ticket.order_id,
            version: ticket.version,
        }
    }
}

async fn list(
    State(state): State<AppState>,
    Query(params): Query<PageParams>,
) -> ApiResult<(HeaderMap, Json<Vec<TicketResponse>>)> {
    let page = params.parse()?;
    let mut tickets = store::list_unreserved(&state.pool, page).await?;
    let mut headers = HeaderMap::new();
    // The store fetched one ticket more than the page holds: if it is there,
    // so is a next page, and the link points past the last ticket shown.
    let page_size = usize::try_from(page.limit).context("page size")?;
    if tickets.len() > page_size {
        tickets.truncate(page_size);
        if let Some(last) = tickets.last() {
            let link = format!(
                "</api/tickets?limit={}&before={}>; rel=\"next\"",
                page.limit, last.id
            );
            headers.insert(
                LINK,
                HeaderValue::from_str(&link).context("building the Link header")?,
            );
        }
    }
    Ok((
        headers,
        Json(tickets.into_iter().map(TicketResponse::from).collect()),
    ))
}

async fn show(State(state): State<AppState>, Id(id): Id) -> ApiResult<Json<TicketResponse>> {
    let ticket = store::find(&state.pool, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(ticket.into()))
}

async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    Json(body): Json<TicketBody>,
) -> ApiResult<(StatusCode, Json<TicketResponse>)> {
    let input = body.parse()?;
    let mut tx = state.pool.begin().await.context("starting a transaction")?;
    let ticket = store::insert(&mut tx, user.id, &input).await?;
    outbox::enqueue(&mut tx, &TicketCreated(ticket.snapshot())).await?;
    tx.commit().await.context("committing a new ticket")?;
    tracing::info!(ticket_id = %ticket.id, user_id = %user.id, "ticket listed");
    Ok((StatusCode::CREATED, Json(ticket.into())))
}

async fn update(
    State(state): State<AppState>,
    user: CurrentUser,
    Id(id): Id,
    Json(body): Json<TicketBody>,
) -> ApiResult<Json<TicketResponse>> {
    let input = body.parse()?;
    let mut tx = state.pool.begin().await.context("starting a transaction")?;
    // Locked, so a reservation cannot land between the checks and the write.
    let ticket = store::lock(&mut tx, id).await?.ok_or(ApiError::NotFound)?;
    if ticket.user_id != user.id {
        return Err(ApiError::Forbidden);
    }
    if ticket.order_id.is_some() {
        return Err(ApiError::BadRequest("Cannot edit a reserved ticket".into()));
    }
    let ticket = store::update_details(&mut tx, id, &input).await?;
    outbox::enqueue(&mut tx, &TicketUpdated(ticket.snapshot())).await?;
    tx.commit().await.context("committing a ticket edit")?;
    Ok(Json(ticket.into()))
}
