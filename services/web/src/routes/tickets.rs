//! `/tickets/...`: sell a ticket, see one, buy it, edit one's own.

use std::time::Duration;

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use uuid::Uuid;

use crate::api::{ApiError, Ticket, User, needs_sign_in, retry_not_found};
use crate::error::PageError;
use crate::extract::{Form, PageId, Visitor};
use crate::routes::page;
use crate::startup::AppState;
use crate::view::FormErrors;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/tickets/new", get(new_form).post(create))
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
    title: String,
    price: String,
    errors: FormErrors,
    /// A reserved ticket cannot be edited: the form is shown disabled.
    reserved: bool,
}

impl TicketFormPage {
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
        self.ticket.order_id.is_some()
    }
}

#[derive(Deserialize, Default)]
struct TicketForm {
    #[serde(default)]
    title: String,
    #[serde(default)]
    price: String,
}

const TICKET_FIELDS: &[&str] = &["title", "price"];

async fn new_form(State(state): State<AppState>, visitor: Visitor) -> Result<Response, PageError> {
    let user = signed_in(&state, &visitor, "/tickets/new").await?;
    page(
        StatusCode::OK,
        &TicketFormPage {
            user: Some(user),
            ticket_id: None,
            title: String::new(),
            price: String::new(),
            errors: FormErrors::none(),
            reserved: false,
        },
    )
}

async fn create(
    State(state): State<AppState>,
    visitor: Visitor,
    Form(input): Form<TicketForm>,
) -> Result<Response, PageError> {
    let refusal = match state
        .api
        .create_ticket(&visitor, &input.title, &input.price)
        .await
    {
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
            title: input.title,
            price: input.price,
            errors: FormErrors::from_refusal(&refusal, TICKET_FIELDS),
            reserved: false,
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
    let reserved = ticket.order_id.is_some();
    page(
        StatusCode::OK,
        &TicketFormPage {
            user: Some(user),
            ticket_id: Some(ticket.id),
            title: ticket.title,
            price: ticket.price.input(),
            errors: FormErrors::none(),
            reserved,
        },
    )
}

async fn update(
    State(state): State<AppState>,
    visitor: Visitor,
    PageId(id): PageId,
    Form(input): Form<TicketForm>,
) -> Result<Response, PageError> {
    let here = format!("/tickets/{id}/edit");
    let err = match state
        .api
        .update_ticket(&visitor, id, &input.title, &input.price)
        .await
    {
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
            title: input.title,
            price: input.price,
            errors: FormErrors::from_refusal(&refusal, TICKET_FIELDS),
            reserved: false,
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
