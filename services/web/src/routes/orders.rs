//! `/orders/...`: one's orders, an order with its countdown and payment
//! form, paying, cancelling.

use std::time::Duration;

use askama::Template;
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::Utc;
use serde::Deserialize;
use uuid::Uuid;

use crate::api::{Order, Refusal, User, needs_sign_in};
use crate::error::PageError;
use crate::extract::{Form, PageId, Visitor};
use crate::routes::page;
use crate::startup::AppState;
use crate::view::{OrderState, Price, clock, seconds_left};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/orders", get(list))
        .route("/orders/{id}", get(show))
        .route("/orders/{id}/pay", post(pay))
        .route("/orders/{id}/cancel", post(cancel))
}

/// After a successful payment, how long to wait for the order to show as
/// complete (the orders service learns of payments through an event)
/// before showing the order anyway, as "confirming".
const CONFIRMATION_WAIT: Duration = Duration::from_secs(3);
/// How long a payment waits for the payments service to hear of an order
/// made a moment ago.
const NEW_ORDER_GRACE: Duration = Duration::from_secs(3);
const RETRY_EVERY: Duration = Duration::from_millis(150);

/// A card of Stripe's test set, offered when there is no Stripe key.
pub(crate) struct TestCard {
    pub(crate) token: &'static str,
    pub(crate) label: &'static str,
    pub(crate) note: &'static str,
}

const TEST_CARDS: [TestCard; 3] = [
    TestCard {
        token: "tok_visa",
        label: "Visa",
        note: "succeeds",
    },
    TestCard {
        token: "tok_mastercard",
        label: "Mastercard",
        note: "succeeds",
    },
    TestCard {
        token: "tok_chargeDeclined",
        label: "Declined card",
        note: "is declined",
    },
];

struct OrderRow {
    id: Uuid,
    title: String,
    price: Price,
    state: OrderState,
}

#[derive(Template)]
#[template(path = "orders.html")]
struct OrdersPage {
    user: Option<User>,
    orders: Vec<OrderRow>,
}

#[derive(Template)]
#[template(path = "order.html")]
struct OrderPage {
    user: Option<User>,
    order: Order,
    state: OrderState,
    /// Seconds of the reservation left when the page was made.
    seconds_left: i64,
    /// The card last chosen, kept checked when the payment is refused.
    token: String,
    /// Why the last payment or cancellation failed.
    error: Option<String>,
    /// Paid a moment ago, and the order has not caught up yet.
    confirming: bool,
    stripe_publishable_key: Option<String>,
    cards: &'static [TestCard],
}

impl OrderPage {
    fn clock(&self) -> String {
        clock(self.seconds_left)
    }

    fn expires_at(&self) -> String {
        self.order
            .expires_at
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    }
}

async fn list(State(state): State<AppState>, visitor: Visitor) -> Result<Response, PageError> {
    let (user, orders) = tokio::join!(state.api.current_user(&visitor), state.api.orders(&visitor));
    let orders = match orders? {
        Ok(orders) => orders,
        Err(refusal) if needs_sign_in(&refusal) => {
            return Err(PageError::SignIn {
                next: "/orders".into(),
            });
        }
        Err(refusal) => return Err(unexpected("orders", &refusal)),
    };
    let now = Utc::now();
    let orders = orders
        .into_iter()
        .map(|order| OrderRow {
            id: order.id,
            state: OrderState::of(&order, now),
            title: order.ticket.title,
            price: order.ticket.price,
        })
        .collect();
    page(
        StatusCode::OK,
        &OrdersPage {
            user: user?,
            orders,
        },
    )
}

#[derive(Deserialize, Default)]
struct ShowQuery {
    #[serde(default)]
    paid: Option<String>,
}

async fn show(
    State(state): State<AppState>,
    visitor: Visitor,
    PageId(id): PageId,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let paid = query
        .and_then(|q| serde_urlencoded::from_str::<ShowQuery>(&q).ok())
        .and_then(|q| q.paid)
        .is_some();
    order_page(
        &state,
        &visitor,
        id,
        StatusCode::OK,
        None,
        String::new(),
        paid,
    )
    .await
}

#[derive(Deserialize, Default)]
struct PayForm {
    #[serde(default)]
    token: String,
}

/// Charges the order, then shows it. A refused payment (declined card,
/// order no longer payable) shows the order again with the message and
/// the form as it was.
async fn pay(
    State(state): State<AppState>,
    visitor: Visitor,
    PageId(id): PageId,
    Form(input): Form<PayForm>,
) -> Result<Response, PageError> {
    let token = input.token.trim().to_string();
    if token.is_empty() {
        let message = "Choose a card to pay with.".to_string();
        return order_page(
            &state,
            &visitor,
            id,
            StatusCode::BAD_REQUEST,
            Some(message),
            token,
            false,
        )
        .await;
    }
    let deadline = tokio::time::Instant::now() + NEW_ORDER_GRACE;
    let refusal = loop {
        match state.api.pay(&visitor, id, &token).await? {
            Ok(payment) => {
                tracing::info!(order_id = %id, payment_id = %payment.id, "order paid through the web");
                return Ok(after_payment(&state, &visitor, id).await);
            }
            Err(refusal) if needs_sign_in(&refusal) => {
                return Err(PageError::SignIn {
                    next: format!("/orders/{id}"),
                });
            }
            Err(refusal)
                if refusal.status == StatusCode::NOT_FOUND
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(RETRY_EVERY).await;
            }
            Err(refusal) => break refusal,
        }
    };
    if refusal.status == StatusCode::FORBIDDEN {
        return Err(PageError::Forbidden("This order belongs to someone else."));
    }
    let message = if refusal.status == StatusCode::NOT_FOUND {
        "This order cannot be paid just yet. Please try again in a moment.".to_string()
    } else {
        refusal.message().to_string()
    };
    order_page(
        &state,
        &visitor,
        id,
        refusal.status,
        Some(message),
        token,
        false,
    )
    .await
}

/// Waits briefly for the order to show as complete, then goes to it; if it
/// has not caught up, the order page says the payment is being confirmed.
async fn after_payment(state: &AppState, visitor: &Visitor, id: Uuid) -> Response {
    let deadline = tokio::time::Instant::now() + CONFIRMATION_WAIT;
    loop {
        if let Ok(Ok(order)) = state.api.order(visitor, id).await
            && order.status == common::events::OrderStatus::Complete
        {
            return Redirect::to(&format!("/orders/{id}")).into_response();
        }
        if tokio::time::Instant::now() >= deadline {
            return Redirect::to(&format!("/orders/{id}?paid=1")).into_response();
        }
        tokio::time::sleep(RETRY_EVERY).await;
    }
}

async fn cancel(
    State(state): State<AppState>,
    visitor: Visitor,
    PageId(id): PageId,
) -> Result<Response, PageError> {
    match state.api.cancel_order(&visitor, id).await? {
        Ok(()) => Ok(Redirect::to(&format!("/orders/{id}")).into_response()),
        Err(refusal) => match refusal.status {
            StatusCode::UNAUTHORIZED => Err(PageError::SignIn {
                next: format!("/orders/{id}"),
            }),
            StatusCode::FORBIDDEN => {
                Err(PageError::Forbidden("This order belongs to someone else."))
            }
            StatusCode::NOT_FOUND => Err(PageError::NotFound),
            status => {
                let message = Some(refusal.message().to_string());
                order_page(&state, &visitor, id, status, message, String::new(), false).await
            }
        },
    }
}

/// The order page, with `status` and, after a refused action, its message.
async fn order_page(
    state: &AppState,
    visitor: &Visitor,
    id: Uuid,
    status: StatusCode,
    error: Option<String>,
    token: String,
    paid: bool,
) -> Result<Response, PageError> {
    let (user, order) = tokio::join!(
        state.api.current_user(visitor),
        state.api.order(visitor, id)
    );
    let order = match order? {
        Ok(order) => order,
        Err(refusal) => {
            return Err(match refusal.status {
                StatusCode::UNAUTHORIZED => PageError::SignIn {
                    next: format!("/orders/{id}"),
                },
                StatusCode::FORBIDDEN => {
                    PageError::Forbidden("This order belongs to someone else.")
                }
                StatusCode::NOT_FOUND => PageError::NotFound,
                _ => unexpected("order", &refusal),
            });
        }
    };
    let now = Utc::now();
    let state_now = OrderState::of(&order, now);
    let token = if token.is_empty() && state.stripe_publishable_key.is_none() {
        TEST_CARDS[0].token.to_string()
    } else {
        token
    };
    page(
        status,
        &OrderPage {
            user: user?,
            seconds_left: seconds_left(order.expires_at, now),
            confirming: paid && state_now.is_reserved(),
            state: state_now,
            order,
            token,
            error,
            stripe_publishable_key: state.stripe_publishable_key.clone(),
            cards: &TEST_CARDS,
        },
    )
}

fn unexpected(what: &str, refusal: &Refusal) -> PageError {
    PageError::Unavailable(anyhow::anyhow!(
        "the orders API refused the {what} with {}: {}",
        refusal.status,
        refusal.message()
    ))
}
