//! The APIs' JSON, as far as the pages read it, and their error body.

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use common::contract::TicketStatus;
use common::events::{EventDetails, OrderStatus};
use serde::{Deserialize, Deserializer};
use uuid::Uuid;

use crate::view::Price;

/// A signed-in user.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct User {
    pub(crate) id: Uuid,
    pub(crate) email: String,
}

/// A user's ban state, as the auth API answers a ban or an unban.
#[derive(Debug, Deserialize)]
pub(crate) struct BanState {
    pub(crate) email: String,
    pub(crate) banned: bool,
}

/// `GET /api/users/currentuser`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CurrentUserBody {
    pub(crate) current_user: Option<User>,
}

/// A ticket; `order_id` is set while an order holds it (reserved or sold).
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
    /// Absent from services that predate it: then `order_id` says reserved.
    #[serde(default)]
    pub(crate) status: Option<TicketStatus>,
    #[serde(default)]
    pub(crate) reserved_until: Option<DateTime<Utc>>,
    #[serde(default)]
    pub(crate) sold_at: Option<DateTime<Utc>>,
    #[serde(default, flatten)]
    pub(crate) details: EventDetails,
}

impl Ticket {
    /// Available, reserved or sold.
    pub(crate) fn state(&self) -> TicketStatus {
        match (self.status, self.order_id) {
            (Some(status), _) => status,
            (None, Some(_)) => TicketStatus::Reserved,
            (None, None) => TicketStatus::Available,
        }
    }
}

/// One page of the ticket list and the query of the next page, if any
/// (the API's own parameters, without the page size).
#[derive(Debug, Clone)]
pub(crate) struct TicketPage {
    pub(crate) tickets: Vec<Ticket>,
    pub(crate) next: Option<String>,
}

/// `GET /api/tickets/summary`: the seller's tickets by state, and earnings.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct SellerSummary {
    pub(crate) listed: i64,
    pub(crate) available: i64,
    pub(crate) reserved: i64,
    pub(crate) sold: i64,
    #[serde(deserialize_with = "price")]
    pub(crate) earned: Price,
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

/// The query of a `Link: <...>; rel="next"` header's target, without its
/// `limit` (the page chooses its own size).
pub(crate) fn next_query(link: &str) -> Option<String> {
    link.split(',')
        .find(|part| part.contains("rel=\"next\"") || part.contains("rel=next"))
        .and_then(|part| {
            let target = part.split('>').next()?.trim().trim_start_matches('<');
            let query = target.split_once('?')?.1;
            let kept: Vec<&str> = query
                .split('&')
                .filter(|pair| !pair.starts_with("limit=") && !pair.is_empty())
                .collect();
            (!kept.is_empty()).then(|| kept.join("&"))
        })
}

/// What a seller typed in the ticket form, as text.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TicketInput {
    #[serde(default)]
    pub(crate) title: String,
    #[serde(default)]
    pub(crate) price: String,
    #[serde(default)]
    pub(crate) event_name: String,
    #[serde(default)]
    pub(crate) venue: String,
    #[serde(default)]
    pub(crate) city: String,
    /// `YYYY-MM-DDTHH:MM` from a `datetime-local` field, in UTC, or an
    /// RFC 3339 date and time with its offset.
    #[serde(default)]
    pub(crate) event_date: String,
    #[serde(default)]
    pub(crate) section: String,
    #[serde(default)]
    pub(crate) row: String,
    #[serde(default)]
    pub(crate) seat: String,
}

impl TicketInput {
    /// The form of an existing ticket, to edit it.
    pub(crate) fn of(ticket: &Ticket) -> Self {
        let text = |value: &Option<String>| value.clone().unwrap_or_default();
        let details = &ticket.details;
        Self {
            title: ticket.title.clone(),
            price: ticket.price.input(),
            event_name: text(&details.event_name),
            venue: text(&details.venue),
            city: text(&details.city),
            event_date: details
                .event_date
                .map(|d| d.format("%Y-%m-%dT%H:%M").to_string())
                .unwrap_or_default(),
            section: text(&details.section),
            row: text(&details.row),
            seat: text(&details.seat),
        }
    }

    /// The JSON body of create and update: blank details are `null` (none),
    /// and the API judges every value so that its messages are the ones shown.
    pub(crate) fn body(&self) -> serde_json::Value {
        let text = |value: &str| {
            let value = value.trim();
            if value.is_empty() {
                serde_json::Value::Null
            } else {
                serde_json::Value::String(value.to_string())
            }
        };
        let date = self.event_date.trim();
        // A datetime-local value has neither seconds nor an offset.
        let event_date = if date.len() == 16 && date.as_bytes().get(10) == Some(&b'T') {
            serde_json::Value::String(format!("{date}:00Z"))
        } else {
            text(date)
        };
        serde_json::json!({
            "title": self.title,
            "price": price_value(&self.price),
            "eventName": text(&self.event_name),
            "venue": text(&self.venue),
            "city": text(&self.city),
            "eventDate": event_date,
            "section": text(&self.section),
            "row": text(&self.row),
            "seat": text(&self.seat),
        })
    }
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
    fn the_next_query_is_read_from_the_link_header() {
        let id = Uuid::now_v7();
        let link = format!("</api/tickets?limit=20&before={id}>; rel=\"next\"");
        assert_eq!(next_query(&link), Some(format!("before={id}")));
        let link = "</api/tickets?limit=2&sort=price&cursor=abc&q=x%20y>; rel=\"next\"";
        assert_eq!(
            next_query(link).as_deref(),
            Some("sort=price&cursor=abc&q=x%20y")
        );
        assert_eq!(next_query("</api/tickets?limit=20>; rel=\"prev\""), None);
        assert_eq!(next_query("garbage"), None);
    }

    #[test]
    fn a_form_becomes_a_body_with_null_for_blank_details_and_utc_for_local_dates() {
        let input = TicketInput {
            title: "Pair".into(),
            price: "20".into(),
            event_name: " Tosca ".into(),
            event_date: "2030-05-01T20:00".into(),
            ..TicketInput::default()
        };
        assert_eq!(
            input.body(),
            json!({"title": "Pair", "price": 20, "eventName": "Tosca", "venue": null,
                   "city": null, "eventDate": "2030-05-01T20:00:00Z", "section": null,
                   "row": null, "seat": null})
        );
        let offset = TicketInput {
            event_date: "2030-05-01T20:00:00+02:00".into(),
            ..TicketInput::default()
        };
        assert_eq!(offset.body()["eventDate"], "2030-05-01T20:00:00+02:00");
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
