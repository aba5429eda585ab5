//! `/api/tickets`: search the listings or a seller's own tickets, a seller's
//! totals, show one, list one for sale, edit one.
//! Every change is written together with its event in one transaction.

use anyhow::Context as _;
use axum::extract::State;
use axum::http::header::LINK;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use common::ApiError;
use common::contract::TicketStatus;
use common::error::ApiResult;
use common::events::{EventDetails, TicketCreated, TicketUpdated};
use common::extract::{Id, Json, Query};
use common::money::Cents;
use common::openapi::{BadRequest, Forbidden, JsonBodyErrors, NotFound, Unauthorized};
use common::outbox;
use common::session::{CurrentUser, MaybeUser};

use crate::domain::{Cursor, ListParams, Scope, Search, Sort, Ticket, TicketBody};
use crate::startup::AppState;
use crate::store;

/// The tag of these operations in the API document.
const TAG: &str = "tickets";

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(summary))
        .routes(routes!(show, update))
}

/// A ticket as the API renders it: the price as a JSON number of currency
/// units, `orderId` while an order holds it, its state, and what it is for.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Ticket)]
struct TicketResponse {
    id: Uuid,
    title: String,
    price: Cents,
    user_id: Uuid,
    /// The order holding it, while one does.
    #[serde(skip_serializing_if = "Option::is_none")]
    order_id: Option<Uuid>,
    version: i64,
    status: TicketStatus,
    /// While reserved: when the reservation ends.
    #[serde(skip_serializing_if = "Option::is_none")]
    reserved_until: Option<DateTime<Utc>>,
    /// Once sold: when it was paid for.
    #[serde(skip_serializing_if = "Option::is_none")]
    sold_at: Option<DateTime<Utc>>,
    #[serde(flatten)]
    details: EventDetails,
}

impl From<Ticket> for TicketResponse {
    fn from(ticket: Ticket) -> Self {
        Self {
            status: ticket.status(),
            details: ticket.details(),
            reserved_until: ticket.reserved_until.filter(|_| ticket.sold_at.is_none()),
            sold_at: ticket.sold_at,
            id: ticket.id,
            title: ticket.title,
            price: ticket.price,
            user_id: ticket.user_id,
            order_id: ticket.order_id,
            version: ticket.version,
        }
    }
}

/// The signed-in seller's totals over every ticket they listed.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = SellerSummary)]
struct SummaryResponse {
    listed: i64,
    available: i64,
    reserved: i64,
    sold: i64,
    /// What the sold tickets brought, in currency units.
    earned: Cents,
}

/// The link to the page after `last`, repeating every filter of `search`.
fn next_link(search: &Search, last: &Ticket) -> anyhow::Result<String> {
    let mut query = vec![("limit", search.limit.to_string())];
    // Newest first pages by id alone, with the `before` that predates sorting.
    if search.sort == Sort::Newest {
        query.push(("before", last.id.to_string()));
    } else {
        query.push(("sort", search.sort.as_str().to_string()));
        query.push(("cursor", Cursor::after(search.sort, last).encode()));
    }
    if search.scope == Scope::MyTickets {
        query.push(("seller", "me".into()));
    }
    if let Some(q) = &search.q {
        query.push(("q", q.clone()));
    }
    for (name, date) in [("from", search.from), ("to", search.to)] {
        if let Some(date) = date {
            query.push((name, date.to_rfc3339_opts(SecondsFormat::AutoSi, true)));
        }
    }
    for (name, price) in [
        ("minPrice", search.min_price),
        ("maxPrice", search.max_price),
    ] {
        if let Some(price) = price {
            query.push((name, price.as_units().to_string()));
        }
    }
    let encoded = serde_urlencoded::to_string(&query).context("encoding the next page's query")?;
    Ok(format!("</api/tickets?{encoded}>; rel=\"next\""))
}

/// Searches the listings (tickets available or reserved whose event has not
/// passed), or with `seller=me` the signed-in seller's own tickets. A page
/// that has a next one says where it is in `Link: <…>; rel="next"`.
#[utoipa::path(
    get,
    path = "/api/tickets",
    operation_id = "listTickets",
    tag = TAG,
    params(ListParams),
    security((), ("session" = [])),
    responses(
        (status = 200, description = "One page of tickets", body = Vec<TicketResponse>,
            headers(("link" = String, description = "`</api/tickets?…>; rel=\"next\"` when there is a next page"))),
        BadRequest,
        Unauthorized,
    )
)]
async fn list(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    Query(params): Query<ListParams>,
) -> ApiResult<(HeaderMap, Json<Vec<TicketResponse>>)> {
    let search = params.parse(user.is_some())?;
    let seller = user.map(|user| user.id);
    let mut tickets = store::search(&state.pool, &search, seller, Utc::now()).await?;
    let mut headers = HeaderMap::new();
    // The store fetched one ticket more than the page holds: if it is there,
    // so is a next page, and the link points past the last ticket shown.
    let page_size = usize::try_from(search.limit).context("page size")?;
    if tickets.len() > page_size {
        tickets.truncate(page_size);
        if let Some(last) = tickets.last() {
            headers.insert(
                LINK,
                HeaderValue::from_str(&next_link(&search, last)?)
                    .context("building the Link header")?,
            );
        }
    }
    Ok((
        headers,
        Json(tickets.into_iter().map(TicketResponse::from).collect()),
    ))
}

/// The signed-in seller's totals: tickets listed, available, reserved and
/// sold, and what the sold ones earned.
#[utoipa::path(
    get,
    path = "/api/tickets/summary",
    operation_id = "sellerSummary",
    tag = TAG,
    security(("session" = [])),
    responses(
        (status = 200, description = "The seller's totals", body = SummaryResponse),
        Unauthorized,
    )
)]
async fn summary(
    State(state): State<AppState>,
    user: CurrentUser,
) -> ApiResult<Json<SummaryResponse>> {
    let totals = store::seller_totals(&state.pool, user.id).await?;
    Ok(Json(SummaryResponse {
        listed: totals.listed,
        available: totals.available,
        reserved: totals.reserved,
        sold: totals.sold,
        earned: totals.earned,
    }))
}

/// One ticket, whatever its state.
#[utoipa::path(
    get,
    path = "/api/tickets/{id}",
    operation_id = "showTicket",
    tag = TAG,
    params(("id" = Uuid, Path, description = "The ticket's id")),
    responses(
        (status = 200, description = "The ticket", body = TicketResponse),
        NotFound,
    )
)]
async fn show(State(state): State<AppState>, Id(id): Id) -> ApiResult<Json<TicketResponse>> {
    let ticket = store::find(&state.pool, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(ticket.into()))
}

/// Lists a ticket for sale as the signed-in user.
#[utoipa::path(
    post,
    path = "/api/tickets",
    operation_id = "createTicket",
    tag = TAG,
    request_body = TicketBody,
    security(("session" = [])),
    responses(
        (status = 201, description = "The ticket, listed", body = TicketResponse),
        JsonBodyErrors,
        Unauthorized,
    )
)]
async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    Json(body): Json<TicketBody>,
) -> ApiResult<(StatusCode, Json<TicketResponse>)> {
    let input = body.parse(Utc::now())?;
    let details = input.details.apply(&EventDetails::default());
    let ticket = Ticket::listed(user.id, input.title, input.price, details);
    let event = outbox::Row::of(&TicketCreated(ticket.snapshot()))?;
    store::insert_listed(&state.pool, &ticket, &event).await?;
    outbox::wake();
    tracing::info!(ticket_id = %ticket.id, user_id = %user.id, "ticket listed");
    Ok((StatusCode::CREATED, Json(ticket.into())))
}

/// Edits one's own ticket while it is available (400 once reserved or
/// sold). Event details absent from the body are kept.
#[utoipa::path(
    put,
    path = "/api/tickets/{id}",
    operation_id = "updateTicket",
    tag = TAG,
    params(("id" = Uuid, Path, description = "The ticket's id")),
    request_body = TicketBody,
    security(("session" = [])),
    responses(
        (status = 200, description = "The ticket, edited", body = TicketResponse),
        JsonBodyErrors,
        Unauthorized,
        Forbidden,
        NotFound,
    )
)]
async fn update(
    State(state): State<AppState>,
    user: CurrentUser,
    Id(id): Id,
    Json(body): Json<TicketBody>,
) -> ApiResult<Json<TicketResponse>> {
    let input = body.parse(Utc::now())?;
    let mut tx = state.pool.begin().await.context("starting a transaction")?;
    // Locked, so a reservation cannot land between the checks and the write.
    let ticket = store::lock(&mut tx, id).await?.ok_or(ApiError::NotFound)?;
    if ticket.user_id != user.id {
        return Err(ApiError::Forbidden);
    }
    match ticket.status() {
        TicketStatus::Sold => {
            return Err(ApiError::BadRequest("Cannot edit a sold ticket".into()));
        }
        TicketStatus::Reserved => {
            return Err(ApiError::BadRequest("Cannot edit a reserved ticket".into()));
        }
        TicketStatus::Available => {}
    }
    let details = input.details.apply(&ticket.details());
    let ticket = store::update_details(&mut tx, id, &input.title, input.price, &details).await?;
    outbox::enqueue(&mut tx, &TicketUpdated(ticket.snapshot())).await?;
    tx.commit().await.context("committing a ticket edit")?;
    Ok(Json(ticket.into()))
}
