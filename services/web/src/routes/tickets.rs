//! `/tickets/...`: sell a ticket, see one, buy it, edit one's own, and the
//! seller's own tickets with their states and totals.

use std::time::Duration;

use askama::Template;
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use uuid::Uuid;

use common::contract::TicketStatus;

use crate::api::{
    ApiError, SellerSummary, Ticket, TicketInput, User, needs_sign_in, retry_not_found,
};
use crate::error::PageError;
use crate::extract::{Form, PageId, Visitor};
use crate::routes::page;
use crate::startup::AppState;
use crate::view::{self, FormErrors};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/tickets/new", get(new_form).post(create))
        .route("/tickets/mine", get(mine))
        .route("/tickets/{id}", get(show))
        .route("/tickets/{id}/purchase", post(purchase))
        .route("/tickets/{id}/edit", get(edit_form).post(update))
}

/// How long a purchase waits for the orders service to hear of a ticket
/// that was just listed (it learns of tickets through events).
const NEW_TICKET_GRACE: Duration = Duration::from_secs(3);

/// What a page says when someone else's ticket is to be edited.
const SELLER_ONLY: &str = "Only the seller can edit this ticket.";

#[derive(Template)]
#[template(path = "ticket_form.html")]
struct TicketFormPage {
    user: Option<User>,
    /// `None` when listing a new ticket.
    ticket_id: Option<Uuid>,
    form: TicketInput,
    errors: FormErrors,
    /// A reserved ticket cannot be edited: the form is shown disabled.
    reserved: bool,
    /// Nor can a sold one.
    sold: bool,
}

/// One optional field of the ticket form.
struct DetailField {
    name: &'static str,
    label: &'static str,
    kind: &'static str,
    value: String,
    hint: &'static str,
}

impl TicketFormPage {
    /// The event details' fields, in the order the form asks for them.
    fn detail_fields(&self) -> Vec<DetailField> {
        let field = |name, label, kind, value: &str, hint| DetailField {
            name,
            label,
            kind,
            value: value.to_string(),
            hint,
        };
        let form = &self.form;
        vec![
            field(
                "eventName",
                "Event",
                "text",
                &form.event_name,
                "The concert, match or show.",
            ),
            field("venue", "Venue", "text", &form.venue, ""),
            field("city", "City", "text", &form.city, ""),
            field(
                "eventDate",
                "Date and time (UTC)",
                "datetime-local",
                &form.event_date,
                "When the event starts, in UTC.",
            ),
            field("section", "Section", "text", &form.section, ""),
            field("row", "Row", "text", &form.row, ""),
            field("seat", "Seat", "text", &form.seat, ""),
        ]
    }

    fn heading(&self) -> &'static str {
        if self.ticket_id.is_some() {
            "Edit your ticket"
        } else {
            "Sell a ticket"
        }
    }

    fn action(&self) -> String {
        match self.ticket_id {
            Some(id) => format!("/tickets/{id}/edit"),
            None => "/tickets/new".into(),
        }
    }

    fn submit_label(&self) -> &'static str {
        if self.ticket_id.is_some() {
            "Save changes"
        } else {
            "List ticket"
        }
    }
}

#[derive(Template)]
#[template(path = "ticket.html")]
struct TicketPage {
    user: Option<User>,
    ticket: Ticket,
    /// A refusal of the purchase, shown above the button.
    error: Option<String>,
}

impl TicketPage {
    fn is_seller(&self) -> bool {
        self.user
            .as_ref()
            .is_some_and(|u| u.id == self.ticket.user_id)
    }

    fn is_reserved(&self) -> bool {
        self.ticket.state() == TicketStatus::Reserved
    }

    fn is_sold(&self) -> bool {
        self.ticket.state() == TicketStatus::Sold
    }

    fn sold_on(&self) -> String {
        self.ticket.sold_at.map(view::day).unwrap_or_default()
    }

    fn event_date(&self) -> String {
        self.ticket
            .details
            .event_date
            .map(view::when)
            .unwrap_or_default()
    }
}

/// The fields of the ticket form, as the API names them.
const TICKET_FIELDS: &[&str] = &[
    "title",
    "price",
    "eventName",
    "venue",
    "city",
    "eventDate",
    "section",
    "row",
    "seat",
];

#[derive(Template)]
#[template(path = "my_tickets.html")]
struct MyTicketsPage {
    user: Option<User>,
    tickets: Vec<Ticket>,
    summary: SellerSummary,
    next: Option<String>,
}

impl MyTicketsPage {
    /// "Available", "Reserved until 14:05" or "Sold on 1 Dec 2026 for $20.00".
    fn state(&self, ticket: &Ticket) -> String {
        match ticket.state() {
            TicketStatus::Available => "Available".into(),
            TicketStatus::Reserved => match ticket.reserved_until {
                Some(until) => format!("Reserved until {} UTC", until.format("%H:%M")),
                None => "Reserved".into(),
            },
            TicketStatus::Sold => format!(
                "Sold on {} for {}",
                ticket.sold_at.map(view::day).unwrap_or_default(),
                ticket.price
            ),
        }
    }

    fn editable(&self, ticket: &Ticket) -> bool {
        ticket.state() == TicketStatus::Available
    }

    fn state_class(&self, ticket: &Ticket) -> &'static str {
        ticket.state().as_str()
    }
}

#[derive(Deserialize, Default)]
struct PageQuery {
    #[serde(default)]
    before: Option<String>,
}

/// `/tickets/mine`: the seller's tickets with their states and totals.
async fn mine(
    State(state): State<AppState>,
    visitor: Visitor,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let user = signed_in(&state, &visitor, "/tickets/mine").await?;
    // Only the page cursor is passed on; a mangled one shows the first page.
    let before = query
        .and_then(|q| serde_urlencoded::from_str::<PageQuery>(&q).ok())
        .and_then(|q| q.before)
        .and_then(|b| Uuid::parse_str(b.trim()).ok())
        .map(|id| format!("before={id}"))
        .unwrap_or_default();
    let (tickets, summary) = tokio::join!(
        state.api.my_tickets(&visitor, MY_TICKETS_PER_PAGE, &before),
        state.api.seller_summary(&visitor),
    );
    let tickets = tickets.map_err(|err| err.sign_in_to("/tickets/mine"))?;
    let summary = summary.map_err(|err| err.sign_in_to("/tickets/mine"))?;
    page(
        StatusCode::OK,
        &MyTicketsPage {
            user: Some(user),
            tickets: tickets.tickets,
            summary,
            next: tickets.next.and_then(|q| {
                q.split('&')
                    .find_map(|p| p.strip_prefix("before=").map(str::to_string))
            }),
        },
    )
}

/// Tickets per page of the seller's dashboard.
const MY_TICKETS_PER_PAGE: u32 = 50;

async fn new_form(State(state): State<AppState>, visitor: Visitor) -> Result<Response, PageError> {
    let user = signed_in(&state, &visitor, "/tickets/new").await?;
    page(
        StatusCode::OK,
        &TicketFormPage {
            user: Some(user),
            ticket_id: None,
            form: TicketInput::default(),
            errors: FormErrors::none(),
            reserved: false,
            sold: false,
        },
    )
}

async fn create(
    State(state): State<AppState>,
    visitor: Visitor,
    Form(input): Form<TicketInput>,
) -> Result<Response, PageError> {
    let refusal = match state.api.create_ticket(&visitor, &input).await {
        Ok(ticket) => {
            return Ok(Redirect::to(&format!("/tickets/{}", ticket.id)).into_response());
        }
        Err(ApiError::Refused(refusal)) if !needs_sign_in(&refusal) => refusal,
        Err(err) => return Err(err.sign_in_to("/tickets/new")),
    };
    let user = state.api.current_user(&visitor).await?;
    page(
        StatusCode::BAD_REQUEST,
        &TicketFormPage {
            user,
            ticket_id: None,
            form: input,
            errors: FormErrors::from_refusal(&refusal, TICKET_FIELDS),
            reserved: false,
            sold: false,
        },
    )
}

async fn show(
    State(state): State<AppState>,
    visitor: Visitor,
    PageId(id): PageId,
) -> Result<Response, PageError> {
    let (user, ticket) = tokio::join!(
        state.api.current_user(&visitor),
        state.api.ticket(&visitor, id)
    );
    let ticket = ticket.map_err(found_or_unavailable)?;
    page(
        StatusCode::OK,
        &TicketPage {
            user: user?,
            ticket,
            error: None,
        },
    )
}

/// Reserves the ticket and goes to the new order. A ticket listed a moment
/// ago may not have reached the orders service yet (404 there while the
/// tickets service knows it): that is retried for a few seconds.
async fn purchase(
    State(state): State<AppState>,
    visitor: Visitor,
    PageId(id): PageId,
) -> Result<Response, PageError> {
    let here = format!("/tickets/{id}");
    let ordered = retry_not_found(NEW_TICKET_GRACE, || state.api.create_order(&visitor, id)).await;
    let refusal = match ordered {
        Ok(order) => {
            return Ok(Redirect::to(&format!("/orders/{}", order.id)).into_response());
        }
        Err(ApiError::Refused(refusal)) if !needs_sign_in(&refusal) => refusal,
        Err(err) => return Err(err.sign_in_to(&here)),
    };
    let (user, ticket) = tokio::join!(
        state.api.current_user(&visitor),
        state.api.ticket(&visitor, id)
    );
    let ticket = ticket.map_err(found_or_unavailable)?;
    let error = if refusal.status == StatusCode::NOT_FOUND {
        "This ticket cannot be bought just yet. Please try again in a moment.".to_string()
    } else {
        refusal.message().to_string()
    };
    page(
        refusal.status,
        &TicketPage {
            user: user?,
            ticket,
            error: Some(error),
        },
    )
}

async fn edit_form(
    State(state): State<AppState>,
    visitor: Visitor,
    PageId(id): PageId,
) -> Result<Response, PageError> {
    let here = format!("/tickets/{id}/edit");
    let (user, ticket) = tokio::join!(
        state.api.current_user(&visitor),
        state.api.ticket(&visitor, id)
    );
    let user = user?.ok_or(PageError::SignIn { next: here })?;
    let ticket = ticket.map_err(found_or_unavailable)?;
    if ticket.user_id != user.id {
        return Err(PageError::Forbidden(SELLER_ONLY));
    }
    let state = ticket.state();
    page(
        StatusCode::OK,
        &TicketFormPage {
            user: Some(user),
            ticket_id: Some(ticket.id),
            form: TicketInput::of(&ticket),
            errors: FormErrors::none(),
            reserved: state == TicketStatus::Reserved,
            sold: state == TicketStatus::Sold,
        },
    )
}

async fn update(
    State(state): State<AppState>,
    visitor: Visitor,
    PageId(id): PageId,
    Form(input): Form<TicketInput>,
) -> Result<Response, PageError> {
    let here = format!("/tickets/{id}/edit");
    let err = match state.api.update_ticket(&visitor, id, &input).await {
        Ok(ticket) => {
            return Ok(Redirect::to(&format!("/tickets/{}", ticket.id)).into_response());
        }
        Err(err) => err,
    };
    let refusal = err
        .into_shown()
        .map_err(|err| err.owned_at(&here, SELLER_ONLY))?;
    let user = state.api.current_user(&visitor).await?;
    page(
        StatusCode::BAD_REQUEST,
        &TicketFormPage {
            user,
            ticket_id: Some(id),
            form: input,
            errors: FormErrors::from_refusal(&refusal, TICKET_FIELDS),
            reserved: false,
            sold: false,
        },
    )
}

/// The signed-in user, or a redirect to sign in and come back to `here`.
async fn signed_in(state: &AppState, visitor: &Visitor, here: &str) -> Result<User, PageError> {
    state
        .api
        .current_user(visitor)
        .await?
        .ok_or_else(|| PageError::SignIn { next: here.into() })
}

/// The page for a ticket that could not be read: the 404 page when there is
/// no such ticket; otherwise the tickets API is failing.
fn found_or_unavailable(err: ApiError) -> PageError {
    if err.is_refused_with(StatusCode::NOT_FOUND) {
        PageError::NotFound
    } else {
        err.into()
    }
}
