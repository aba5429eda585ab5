//! `/api/tickets`: search the listings or a seller's own tickets, a seller's
//! totals, show one, list one for sale, edit one.
//! Every change is written together with its event in one transaction.

use anyhow::Context as _;
use axum::Router;
use axum::extract::State;
use axum::http::header::LINK;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::routing::get;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use uuid::Uuid;

use common::ApiError;
use common::contract::TicketStatus;
use common::error::ApiResult;
use common::events::{EventDetails, TicketCreated, TicketUpdated};
use common::extract::{Id, Json, Query};
use common::money::Cents;
use common::outbox;
use common::session::{CurrentUser, MaybeUser};

use crate::domain::{Cursor, ListParams, Scope, Search, Sort, Ticket, TicketBody};
use crate::startup::AppState;
use crate::store;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/tickets", get(list).post(create))
        .route("/api/tickets/summary", get(summary))
        .route("/api/tickets/{id}", get(show).put(update))
}

/// A ticket as the API renders it: the price as a JSON number of currency
/// units, `orderId` while an order holds it, its state, and what it is for.
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
    status: TicketStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    reserved_until: Option<DateTime<Utc>>,
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
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
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
    let input = body.parse(Utc::now())?;
    let details = input.details.apply(&EventDetails::default());
    let mut tx = state.pool.begin().await.context("starting a transaction")?;
    let ticket = store::insert(&mut tx, user.id, &input.title, input.price, &details).await?;
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
