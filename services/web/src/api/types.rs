//! The APIs' JSON, as far as the pages read it, and their error body.

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use common::events::OrderStatus;
use serde::{Deserialize, Deserializer};
use uuid::Uuid;

use crate::view::Price;

/// A signed-in user.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct User {
    pub(crate) id: Uuid,
    pub(crate) email: String,
}

/// `GET /api/users/currentuser`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CurrentUserBody {
    pub(crate) current_user: Option<User>,
}

/// A ticket; `order_id` is set while it is reserved.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Ticket {
    pub(crate) id: Uuid,
    pub(crate) title: String,
    #[serde(deserialize_with = "price")]
    pub(crate) price: Price,
    pub(crate) user_id: Uuid,
    #[serde(default)]
    pub(crate) order_id: Option<Uuid>,
}

/// One page of the ticket list and the cursor of the next, if any.
#[derive(Debug, Clone)]
pub(crate) struct TicketPage {
    pub(crate) tickets: Vec<Ticket>,
    pub(crate) next: Option<Uuid>,
}

/// An order with the ticket it holds.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Order {
    pub(crate) id: Uuid,
    pub(crate) status: OrderStatus,
    pub(crate) expires_at: DateTime<Utc>,
    pub(crate) ticket: OrderTicket,
}

/// The ticket inside an order.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct OrderTicket {
    pub(crate) id: Uuid,
    pub(crate) title: String,
    #[serde(deserialize_with = "price")]
    pub(crate) price: Price,
}

/// `POST /api/payments`'s answer.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Payment {
    pub(crate) id: Uuid,
}

fn price<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Price, D::Error> {
    let units = f64::deserialize(deserializer)?;
    Ok(Price::from_units(units))
}

/// A client error of an API: its status and its `{"errors": [...]}` entries.
#[derive(Debug, Clone)]
pub(crate) struct Refusal {
    pub(crate) status: StatusCode,
    pub(crate) errors: Vec<ErrorEntry>,
}

/// One entry of an API error body.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ErrorEntry {
    pub(crate) message: String,
    #[serde(default)]
    pub(crate) field: Option<String>,
}

#[derive(Deserialize)]
struct ErrorBody {
    errors: Vec<ErrorEntry>,
}

impl Refusal {
    /// Reads an error body; one that does not follow the API's format still
    /// becomes a readable message.
    pub(crate) fn from_body(status: StatusCode, bytes: &[u8]) -> Self {
        let errors = match serde_json::from_slice::<ErrorBody>(bytes) {
            Ok(body) if !body.errors.is_empty() => body.errors,
            _ => vec![ErrorEntry {
                message: status
                    .canonical_reason()
                    .unwrap_or("The request was refused")
                    .to_string(),
                field: None,
            }],
        };
        Self { status, errors }
    }

    /// The first message, for places that show one.
    pub(crate) fn message(&self) -> &str {
        self.errors.first().map_or("", |e| e.message.as_str())
    }
}

/// The `before` cursor of a `Link: <...>; rel="next"` header.
pub(crate) fn next_cursor(link: &str) -> Option<Uuid> {
    link.split(',')
        .find(|part| part.contains("rel=\"next\"") || part.contains("rel=next"))
        .and_then(|part| {
            let target = part.split('>').next()?.trim().trim_start_matches('<');
            let query = target.split_once('?')?.1;
            query
                .split('&')
                .find_map(|pair| pair.strip_prefix("before="))
                .and_then(|id| Uuid::parse_str(id).ok())
        })
}

/// The price field of a ticket body: a JSON number when the text is one,
/// else the text itself (or null when blank), which the API refuses with
/// its own message against `price`.
pub(crate) fn price_value(text: &str) -> serde_json::Value {
    let text = text.trim();
    if text.is_empty() {
        return serde_json::Value::Null;
    }
    // "15." and ".5" are how people type prices; JSON wants "15.0", "0.5".
    let normalised = match (text.strip_prefix('.'), text.strip_suffix('.')) {
        (Some(rest), _) => format!("0.{rest}"),
        (_, Some(rest)) => rest.to_string(),
        _ => text.to_string(),
    };
    match serde_json::from_str::<serde_json::Number>(&normalised) {
        Ok(number) => serde_json::Value::Number(number),
        Err(_) => serde_json::Value::String(text.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_next_cursor_is_read_from_the_link_header() {
        let id = Uuid::now_v7();
        let link = format!("</api/tickets?limit=20&before={id}>; rel=\"next\"");
        assert_eq!(next_cursor(&link), Some(id));
        assert_eq!(next_cursor("</api/tickets?limit=20>; rel=\"prev\""), None);
        assert_eq!(next_cursor("garbage"), None);
    }

    #[test]
    fn prices_are_sent_as_numbers_when_they_are_numbers() {
        assert_eq!(price_value("15.5"), json!(15.5));
        assert_eq!(price_value(" 20 "), json!(20));
        assert_eq!(price_value(".5"), json!(0.5));
        assert_eq!(price_value("abc"), json!("abc"));
        assert_eq!(price_value("1,5"), json!("1,5"));
        assert_eq!(price_value("  "), json!(null));
    }

    #[test]
    fn an_error_body_keeps_its_fields_and_a_foreign_one_gets_a_message() {
        let body = br#"{"errors":[{"message":"Email in use","field":"email"}]}"#;
        let refusal = Refusal::from_body(StatusCode::BAD_REQUEST, body);
        assert_eq!(refusal.errors[0].field.as_deref(), Some("email"));
        assert_eq!(refusal.message(), "Email in use");
        let refusal = Refusal::from_body(StatusCode::NOT_FOUND, b"<html>");
        assert_eq!(refusal.message(), "Not Found");
    }
}
