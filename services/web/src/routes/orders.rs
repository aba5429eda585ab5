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

use crate::api::{ApiError, Order, User, needs_sign_in, retry_not_found};
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
/// How often the order is read again while it catches up with a payment.
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

/// What a page says when an order is someone else's.
const NOT_YOURS: &str = "This order belongs to someone else.";

/// How the order page is shown: with what status, and what the last action
/// (a payment, a cancellation) left on it.
struct OrderView {
    status: StatusCode,
    /// Why the last payment or cancellation failed.
    error: Option<String>,
    /// The card last chosen, kept checked when the payment is refused.
    token: String,
    /// Paid a moment ago: while the order has not caught up, it shows as
    /// being confirmed.
    paid: bool,
}

impl OrderView {
    /// The order as it is; `paid` right after a payment.
    fn shown(paid: bool) -> Self {
        Self {
            status: StatusCode::OK,
            error: None,
            token: String::new(),
            paid,
        }
    }

    /// The order again after a refused action, with `status` and `message`,
    /// and the card that was chosen.
    fn refused(status: StatusCode, message: String, token: String) -> Self {
        Self {
            status,
            error: Some(message),
            token,
            paid: false,
        }
    }
}

async fn list(State(state): State<AppState>, visitor: Visitor) -> Result<Response, PageError> {
    let (user, orders) = tokio::join!(state.api.current_user(&visitor), state.api.orders(&visitor));
    let orders = orders.map_err(|err| err.sign_in_to("/orders"))?;
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
    order_page(&state, &visitor, id, OrderView::shown(paid)).await
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
        let view = OrderView::refused(StatusCode::BAD_REQUEST, message, token);
        return order_page(&state, &visitor, id, view).await;
    }
    let paid = retry_not_found(NEW_ORDER_GRACE, || state.api.pay(&visitor, id, &token)).await;
    let refusal = match paid {
        Ok(payment) => {
            tracing::info!(order_id = %id, payment_id = %payment.id, "order paid through the web");
            return Ok(after_payment(&state, &visitor, id).await);
        }
        Err(ApiError::Refused(refusal))
            if !needs_sign_in(&refusal) && refusal.status != StatusCode::FORBIDDEN =>
        {
            refusal
        }
        Err(err) => return Err(err.owned_at(&format!("/orders/{id}"), NOT_YOURS)),
    };
    let message = if refusal.status == StatusCode::NOT_FOUND {
        "This order cannot be paid just yet. Please try again in a moment.".to_string()
    } else {
        refusal.message().to_string()
    };
    let view = OrderView::refused(refusal.status, message, token);
    order_page(&state, &visitor, id, view).await
}

/// Waits briefly for the order to show as complete, then goes to it; if it
/// has not caught up, the order page says the payment is being confirmed.
async fn after_payment(state: &AppState, visitor: &Visitor, id: Uuid) -> Response {
    let deadline = tokio::time::Instant::now() + CONFIRMATION_WAIT;
    loop {
        if let Ok(order) = state.api.order(visitor, id).await
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
    let here = format!("/orders/{id}");
    let err = match state.api.cancel_order(&visitor, id).await {
        Ok(()) => return Ok(Redirect::to(&here).into_response()),
        Err(err) => err,
    };
    let refusal = err
        .into_shown()
        .map_err(|err| err.owned_at(&here, NOT_YOURS))?;
    let message = refusal.message().to_string();
    let view = OrderView::refused(refusal.status, message, String::new());
    order_page(&state, &visitor, id, view).await
}

/// The order page, as `view` says.
async fn order_page(
    state: &AppState,
    visitor: &Visitor,
    id: Uuid,
    view: OrderView,
) -> Result<Response, PageError> {
    let (user, order) = tokio::join!(
        state.api.current_user(visitor),
        state.api.order(visitor, id)
    );
    let order = order.map_err(|err| err.owned_at(&format!("/orders/{id}"), NOT_YOURS))?;
    let now = Utc::now();
    let state_now = OrderState::of(&order, now);
    let token = if view.token.is_empty() && state.stripe_publishable_key.is_none() {
        TEST_CARDS[0].token.to_string()
    } else {
        view.token
    };
    page(
        view.status,
        &OrderPage {
            user: user?,
            seconds_left: seconds_left(order.expires_at, now),
            confirming: view.paid && state_now.is_reserved(),
            state: state_now,
            order,
            token,
            error: view.error,
            stripe_publishable_key: state.stripe_publishable_key.clone(),
            cards: &TEST_CARDS,
        },
    )
}
