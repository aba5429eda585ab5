//! Tickets as the service knows them, and the input of the tickets API parsed
//! into values the handlers can trust.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, SecondsFormat, SubsecRound as _, Utc};
use serde::Deserialize;
use uuid::Uuid;

use common::contract::TicketStatus;
use common::events::{EventDetails, TicketSnapshot};
use common::money::Cents;
use common::{ApiError, FieldError};

/// The longest accepted title, in characters, after trimming.
pub(crate) const MAX_TITLE_CHARS: usize = 200;

/// Tickets per page when the client does not say.
pub(crate) const DEFAULT_PAGE_SIZE: i64 = 50;

/// The most tickets one page may hold.
pub(crate) const MAX_PAGE_SIZE: i64 = 100;

/// A row of the tickets table.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct Ticket {
    pub(crate) id: Uuid,
    pub(crate) title: String,
    pub(crate) price: Cents,
    pub(crate) user_id: Uuid,
    pub(crate) order_id: Option<Uuid>,
    pub(crate) version: i64,
    /// When the reservation of `order_id` ends, while it is reserved.
    pub(crate) reserved_until: Option<DateTime<Utc>>,
    /// When the order holding it was paid; set once, for good.
    pub(crate) sold_at: Option<DateTime<Utc>>,
    pub(crate) event_name: Option<String>,
    pub(crate) venue: Option<String>,
    pub(crate) city: Option<String>,
    pub(crate) event_date: Option<DateTime<Utc>>,
    pub(crate) section: Option<String>,
    pub(crate) seat_row: Option<String>,
    pub(crate) seat: Option<String>,
}

impl Ticket {
    /// Sold once paid for; reserved while an order holds it; else available.
    pub(crate) fn status(&self) -> TicketStatus {
        if self.sold_at.is_some() {
            TicketStatus::Sold
        } else if self.order_id.is_some() {
            TicketStatus::Reserved
        } else {
            TicketStatus::Available
        }
    }

    /// A new listing: free, at version 0, with a fresh id.
    pub(crate) fn listed(
        user_id: Uuid,
        title: String,
        price: Cents,
        details: EventDetails,
    ) -> Ticket {
        Ticket {
            id: Uuid::now_v7(),
            title,
            price,
            user_id,
            order_id: None,
            version: 0,
            reserved_until: None,
            sold_at: None,
            event_name: details.event_name,
            venue: details.venue,
            city: details.city,
            event_date: details.event_date,
            section: details.section,
            seat_row: details.row,
            seat: details.seat,
        }
    }

    /// What the ticket is for, as events and the API carry it.
    pub(crate) fn details(&self) -> EventDetails {
        EventDetails {
            event_name: self.event_name.clone(),
            venue: self.venue.clone(),
            city: self.city.clone(),
            event_date: self.event_date,
            section: self.section.clone(),
            row: self.seat_row.clone(),
            seat: self.seat.clone(),
        }
    }

    /// The ticket as ticket.created and ticket.updated carry it.
    pub(crate) fn snapshot(&self) -> TicketSnapshot {
        TicketSnapshot {
            id: self.id,
            version: self.version,
            title: self.title.clone(),
            price: self.price.0,
            user_id: self.user_id,
            order_id: self.order_id,
            details: self.details(),
        }
    }
}

/// The longest accepted event name, venue, city, section, row or seat.
pub(crate) const MAX_DETAIL_CHARS: usize = 200;

/// A change to one optional field of a ticket: create and update leave an
/// absent field as it is (none, on create), `null` or blank clears it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change<T> {
    Keep,
    Clear,
    Set(T),
}

impl<T: Clone> Change<T> {
    /// The field's value once the change is applied to `current`.
    pub(crate) fn apply(&self, current: &Option<T>) -> Option<T> {
        match self {
            Self::Keep => current.clone(),
            Self::Clear => None,
            Self::Set(value) => Some(value.clone()),
        }
    }
}

/// The body of create and update. Every field is optional and any JSON
/// value, so that deserialising never fails on them and every bad field gets
/// its own entry in one 400. Unknown fields are ignored.
/// In the API document each field has the type a valid request gives it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TicketBody {
    /// 1 to 200 characters once trimmed.
    #[serde(default)]
    #[schema(required = true, value_type = String, min_length = 1, max_length = 200, pattern = r"\S", examples("Front row"))]
    title: Option<String>,
    /// Greater than 0, at most 1000000, with at most two decimals.
    #[serde(default)]
    #[schema(required = true, value_type = f64, minimum = 0.01, maximum = 1000000, multiple_of = 0.01, examples(25.5))]
    price: serde_json::Value,
    /// Absent: kept as it is; `null` or blank: cleared. At most 200 characters, like the other texts.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 200)]
    event_name: Option<serde_json::Value>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 200)]
    venue: Option<serde_json::Value>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 200)]
    city: Option<serde_json::Value>,
    /// RFC 3339 with an offset; in the future when the ticket is listed.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    event_date: Option<serde_json::Value>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 200)]
    section: Option<serde_json::Value>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 200)]
    row: Option<serde_json::Value>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 200)]
    seat: Option<serde_json::Value>,
}

/// A field that is in the body, even as `null`: `Some`; serde's own
/// `Option` would make `null` and absent the same.
fn present<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<serde_json::Value>, D::Error> {
    serde_json::Value::deserialize(deserializer).map(Some)
}

/// Changes to a ticket's event details that passed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DetailsChange {
    pub(crate) event_name: Change<String>,
    pub(crate) venue: Change<String>,
    pub(crate) city: Change<String>,
    pub(crate) event_date: Change<DateTime<Utc>>,
    pub(crate) section: Change<String>,
    pub(crate) row: Change<String>,
    pub(crate) seat: Change<String>,
}

impl DetailsChange {
    /// The details once applied to `current`.
    pub(crate) fn apply(&self, current: &EventDetails) -> EventDetails {
        EventDetails {
            event_name: self.event_name.apply(&current.event_name),
            venue: self.venue.apply(&current.venue),
            city: self.city.apply(&current.city),
            event_date: self.event_date.apply(&current.event_date),
            section: self.section.apply(&current.section),
            row: self.row.apply(&current.row),
            seat: self.seat.apply(&current.seat),
        }
    }
}

/// A title, price and event details that passed validation; texts are trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TicketInput {
    pub(crate) title: String,
    pub(crate) price: Cents,
    pub(crate) details: DetailsChange,
}

/// A trimmed text of at most [`MAX_DETAIL_CHARS`]; blank or null clears.
fn text_change(
    field: &'static str,
    label: &str,
    value: Option<serde_json::Value>,
    errors: &mut Vec<FieldError>,
) -> Change<String> {
    match value {
        None => Change::Keep,
        Some(serde_json::Value::Null) => Change::Clear,
        Some(serde_json::Value::String(text)) => {
            let text = text.trim();
            if text.is_empty() {
                Change::Clear
            } else if text.chars().count() > MAX_DETAIL_CHARS {
                errors.push(FieldError::new(
                    field,
                    format!("{label} must be at most {MAX_DETAIL_CHARS} characters"),
                ));
                Change::Keep
            } else {
                Change::Set(text.to_string())
            }
        }
        Some(_) => {
            errors.push(FieldError::new(field, format!("{label} must be text")));
            Change::Keep
        }
    }
}

/// An RFC 3339 date and time with an offset, after `now`; blank or null clears.
fn date_change(
    value: Option<serde_json::Value>,
    now: DateTime<Utc>,
    errors: &mut Vec<FieldError>,
) -> Change<DateTime<Utc>> {
    const FIELD: &str = "eventDate";
    match value {
        None => Change::Keep,
        Some(serde_json::Value::Null) => Change::Clear,
        Some(serde_json::Value::String(text)) if text.trim().is_empty() => Change::Clear,
        Some(serde_json::Value::String(text)) => match DateTime::parse_from_rfc3339(text.trim()) {
            // Kept to the microsecond, as PostgreSQL stores it, so that a new
            // ticket's response and event say what the database holds.
            Ok(date) if date.with_timezone(&Utc) > now => {
                Change::Set(date.with_timezone(&Utc).trunc_subsecs(6))
            }
            Ok(_) => {
                errors.push(FieldError::new(FIELD, "Event date must be in the future"));
                Change::Keep
            }
            Err(_) => {
                errors.push(FieldError::new(
                    FIELD,
                    "Event date must be an RFC 3339 date and time with an offset",
                ));
                Change::Keep
            }
        },
        Some(_) => {
            errors.push(FieldError::new(
                FIELD,
                "Event date must be an RFC 3339 date and time with an offset",
            ));
            Change::Keep
        }
    }
}

impl TicketBody {
    /// A non-blank title of at most 200 characters, a price greater than
    /// zero with at most two decimals, texts of at most 200 characters and an
    /// event date after `now`; otherwise one entry per bad field.
    pub(crate) fn parse(self, now: DateTime<Utc>) -> Result<TicketInput, ApiError> {
        let mut errors = Vec::new();
        let title = self.title.as_deref().unwrap_or_default().trim().to_string();
        if title.is_empty() {
            errors.push(FieldError::new("title", "Title is required"));
        } else if title.chars().count() > MAX_TITLE_CHARS {
            errors.push(FieldError::new(
                "title",
                format!("Title must be at most {MAX_TITLE_CHARS} characters"),
            ));
        }
        let price = match Cents::parse_price(&self.price) {
            Ok(price) => Some(price),
            Err(message) => {
                errors.push(FieldError::new("price", message));
                None
            }
        };
        let details = DetailsChange {
            event_name: text_change("eventName", "Event name", self.event_name, &mut errors),
            venue: text_change("venue", "Venue", self.venue, &mut errors),
            city: text_change("city", "City", self.city, &mut errors),
            event_date: date_change(self.event_date, now, &mut errors),
            section: text_change("section", "Section", self.section, &mut errors),
            row: text_change("row", "Row", self.row, &mut errors),
            seat: text_change("seat", "Seat", self.seat, &mut errors),
        };
        match price {
            Some(price) if errors.is_empty() => Ok(TicketInput {
                title,
                price,
                details,
            }),
            _ => Err(ApiError::Validation(errors)),
        }
    }
}

/// How the list is ordered; each order is a keyset on its key and the id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Sort {
    /// Newest listing first (the default).
    #[default]
    Newest,
    /// Soonest event first; tickets without a date last.
    Date,
    /// Cheapest first.
    Price,
}

impl Sort {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Newest => "newest",
            Self::Date => "date",
            Self::Price => "price",
        }
    }
}

/// Where a page starts: after the ticket with this sort key and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cursor {
    Newest {
        id: Uuid,
    },
    /// `None` is a ticket without an event date: those sort last.
    Date {
        date: Option<DateTime<Utc>>,
        id: Uuid,
    },
    Price {
        price: i64,
        id: Uuid,
    },
}

impl Cursor {
    /// The cursor that continues after `ticket` in `sort` order.
    pub(crate) fn after(sort: Sort, ticket: &Ticket) -> Cursor {
        match sort {
            Sort::Newest => Cursor::Newest { id: ticket.id },
            Sort::Date => Cursor::Date {
                date: ticket.event_date,
                id: ticket.id,
            },
            Sort::Price => Cursor::Price {
                price: ticket.price.0,
                id: ticket.id,
            },
        }
    }

    /// The cursor as the opaque text of the `cursor` parameter.
    pub(crate) fn encode(&self) -> String {
        let text = match self {
            Self::Newest { id } => format!("newest|{id}"),
            Self::Date { date, id } => {
                let key = date.map_or_else(
                    || "-".to_string(),
                    |d| d.to_rfc3339_opts(SecondsFormat::Micros, true),
                );
                format!("date|{key}|{id}")
            }
            Self::Price { price, id } => format!("price|{price}|{id}"),
        };
        URL_SAFE_NO_PAD.encode(text)
    }

    /// Reads a cursor made by [`Cursor::encode`] for `sort`.
    fn decode(text: &str, sort: Sort) -> Option<Cursor> {
        let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let mut parts = text.split('|');
        let kind = parts.next()?;
        let cursor = match (kind, sort) {
            ("newest", Sort::Newest) => Cursor::Newest {
                id: parts.next()?.parse().ok()?,
            },
            ("date", Sort::Date) => {
                let key = parts.next()?;
                let date = if key == "-" {
                    None
                } else {
                    Some(DateTime::parse_from_rfc3339(key).ok()?.with_timezone(&Utc))
                };
                Cursor::Date {
                    date,
                    id: parts.next()?.parse().ok()?,
                }
            }
            ("price", Sort::Price) => Cursor::Price {
                price: parts.next()?.parse().ok()?,
                id: parts.next()?.parse().ok()?,
            },
            _ => return None,
        };
        parts.next().is_none().then_some(cursor)
    }
}

/// Whose tickets a list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// The public listings: free tickets whose event has not passed.
    Listed,
    /// Every ticket of the signed-in seller, whatever its state.
    MyTickets,
}

/// The query string of the list, kept as text so that a bad value is
/// reported against its field rather than as a bad query.
/// In the API document each parameter has its real type.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub(crate) struct ListParams {
    /// Tickets per page, 1 to 100 (default 50).
    #[serde(default)]
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    pub(crate) limit: Option<String>,
    /// Newest-first order only: the tickets listed before this ticket id.
    #[serde(default)]
    #[param(value_type = Option<Uuid>)]
    pub(crate) before: Option<String>,
    /// The page after the one whose `Link: <…>; rel="next"` gave this
    /// cursor; valid only with the same `sort`.
    #[serde(default)]
    pub(crate) cursor: Option<String>,
    /// Words to find in the event name, title, venue or city (at most 200 characters).
    #[serde(default)]
    #[param(max_length = 200)]
    pub(crate) q: Option<String>,
    /// Events on or after this instant (RFC 3339 with an offset).
    #[serde(default)]
    #[param(value_type = Option<DateTime<Utc>>)]
    pub(crate) from: Option<String>,
    /// Events on or before this instant (RFC 3339 with an offset).
    #[serde(default)]
    #[param(value_type = Option<DateTime<Utc>>)]
    pub(crate) to: Option<String>,
    /// The lowest price, in currency units.
    #[serde(default)]
    #[param(value_type = Option<f64>, minimum = 0.01, maximum = 1000000, multiple_of = 0.01)]
    pub(crate) min_price: Option<String>,
    /// The highest price, in currency units.
    #[serde(default)]
    #[param(value_type = Option<f64>, minimum = 0.01, maximum = 1000000, multiple_of = 0.01)]
    pub(crate) max_price: Option<String>,
    /// `newest` (default), `date` (soonest event first) or `price` (cheapest first).
    #[serde(default)]
    #[param(value_type = Option<SortParam>, inline)]
    pub(crate) sort: Option<String>,
    /// `me`: the signed-in seller's own tickets, sold and past ones included (401 when signed out).
    #[serde(default)]
    #[param(value_type = Option<SellerParam>, inline)]
    pub(crate) seller: Option<String>,
}

/// The orders `sort` names, for the API document.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code, reason = "only its schema is used")]
pub(crate) enum SortParam {
    Newest,
    Date,
    Price,
}

/// The one value of `seller`, for the API document.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code, reason = "only its schema is used")]
pub(crate) enum SellerParam {
    Me,
}

/// A validated search: filters, order and the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Search {
    pub(crate) scope: Scope,
    /// Words to find in the event name, title, venue or city.
    pub(crate) q: Option<String>,
    pub(crate) from: Option<DateTime<Utc>>,
    pub(crate) to: Option<DateTime<Utc>>,
    pub(crate) min_price: Option<Cents>,
    pub(crate) max_price: Option<Cents>,
    pub(crate) sort: Sort,
    pub(crate) limit: i64,
    pub(crate) after: Option<Cursor>,
}

/// The longest accepted search text, in characters.
pub(crate) const MAX_QUERY_CHARS: usize = 200;

fn parse_date_param(
    field: &'static str,
    text: Option<&str>,
    errors: &mut Vec<FieldError>,
) -> Option<DateTime<Utc>> {
    let text = text.map(str::trim).filter(|t| !t.is_empty())?;
    match DateTime::parse_from_rfc3339(text) {
        Ok(date) => Some(date.with_timezone(&Utc)),
        Err(_) => {
            errors.push(FieldError::new(
                field,
                format!("{field} must be an RFC 3339 date and time with an offset"),
            ));
            None
        }
    }
}

fn parse_price_param(
    field: &'static str,
    text: Option<&str>,
    errors: &mut Vec<FieldError>,
) -> Option<Cents> {
    let text = text.map(str::trim).filter(|t| !t.is_empty())?;
    let parsed = serde_json::from_str::<serde_json::Number>(text)
        .map_err(|_| "Price must be a number greater than 0 with at most two decimals")
        .and_then(|n| Cents::parse_price(&serde_json::Value::Number(n)));
    match parsed {
        Ok(price) => Some(price),
        Err(message) => {
            errors.push(FieldError::new(field, message));
            None
        }
    }
}

impl ListParams {
    /// Validates every parameter; one 400 entry per bad one. `seller` may
    /// only be `me`, and then `signed_in` must be true (else 401).
    pub(crate) fn parse(self, signed_in: bool) -> Result<Search, ApiError> {
        let mut errors = Vec::new();
        let limit = match self.limit.as_deref().map(str::trim) {
            None => DEFAULT_PAGE_SIZE,
            Some(text) => match text.parse::<i64>() {
                Ok(n) if (1..=MAX_PAGE_SIZE).contains(&n) => n,
                _ => {
                    errors.push(FieldError::new(
                        "limit",
                        format!("Limit must be a whole number from 1 to {MAX_PAGE_SIZE}"),
                    ));
                    DEFAULT_PAGE_SIZE
                }
            },
        };
        let sort = match self.sort.as_deref().map(str::trim) {
            None | Some("") | Some("newest") => Sort::Newest,
            Some("date") => Sort::Date,
            Some("price") => Sort::Price,
            Some(_) => {
                errors.push(FieldError::new(
                    "sort",
                    "Sort must be one of date, price or newest",
                ));
                Sort::Newest
            }
        };
        let mut after = match self.before.as_deref().map(str::trim) {
            None => None,
            Some(text) => match Uuid::parse_str(text) {
                Ok(id) if sort == Sort::Newest => Some(Cursor::Newest { id }),
                Ok(_) => {
                    errors.push(FieldError::new(
                        "before",
                        "Before only pages the newest-first order; use cursor",
                    ));
                    None
                }
                Err(_) => {
                    errors.push(FieldError::new("before", "Before must be a ticket id"));
                    None
                }
            },
        };
        if let Some(text) = self.cursor.as_deref().map(str::trim) {
            match Cursor::decode(text, sort) {
                Some(cursor) => after = Some(cursor),
                None => errors.push(FieldError::new(
                    "cursor",
                    "Cursor must be one a previous page of this order gave",
                )),
            }
        }
        let q = self
            .q
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string);
        if q.as_deref()
            .is_some_and(|q| q.chars().count() > MAX_QUERY_CHARS)
        {
            errors.push(FieldError::new(
                "q",
                format!("q must be at most {MAX_QUERY_CHARS} characters"),
            ));
        }
        let from = parse_date_param("from", self.from.as_deref(), &mut errors);
        let to = parse_date_param("to", self.to.as_deref(), &mut errors);
        if let (Some(from), Some(to)) = (from, to)
            && from > to
        {
            errors.push(FieldError::new("to", "to must not be before from"));
        }
        let min_price = parse_price_param("minPrice", self.min_price.as_deref(), &mut errors);
        let max_price = parse_price_param("maxPrice", self.max_price.as_deref(), &mut errors);
        if let (Some(min), Some(max)) = (min_price, max_price)
            && min > max
        {
            errors.push(FieldError::new(
                "maxPrice",
                "maxPrice must not be below minPrice",
            ));
        }
        let scope = match self.seller.as_deref().map(str::trim) {
            None | Some("") => Scope::Listed,
            Some("me") if signed_in => Scope::MyTickets,
            Some("me") => return Err(ApiError::Unauthorized),
            Some(_) => {
                errors.push(FieldError::new("seller", "Seller must be me"));
                Scope::Listed
            }
        };
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors));
        }
        Ok(Search {
            scope,
            q: q.filter(|q| q.chars().count() <= MAX_QUERY_CHARS),
            from,
            to,
            min_price,
            max_price,
            sort,
            limit,
            after,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn body(value: Value) -> TicketBody {
        serde_json::from_value(value).expect("any object is a body")
    }

    fn fields(err: ApiError) -> Vec<(String, String)> {
        match err {
            ApiError::Validation(f) => f
                .into_iter()
                .map(|f| (f.field.unwrap_or_default(), f.message))
                .collect(),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_valid_body_becomes_a_trimmed_title_and_cents() {
        let input = body(json!({"title": "  Concert ", "price": 15.5}))
            .parse(Utc::now())
            .expect("valid");
        assert_eq!(input.title, "Concert");
        assert_eq!(input.price, Cents(1550));
    }

    #[test]
    fn an_empty_body_gets_one_entry_per_field() {
        let err = body(json!({})).parse(Utc::now()).expect_err("invalid");
        let entries = fields(err);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0], ("title".into(), "Title is required".into()));
        assert_eq!(entries[1].0, "price");
    }

    #[test]
    fn titles_may_have_200_characters_after_trimming_and_no_more() {
        let ok = format!("  {}  ", "é".repeat(200));
        assert!(
            body(json!({"title": ok, "price": 1}))
                .parse(Utc::now())
                .is_ok()
        );
        let err = body(json!({"title": "x".repeat(201), "price": 1}))
            .parse(Utc::now())
            .expect_err("too long");
        assert_eq!(
            fields(err),
            vec![(
                "title".into(),
                "Title must be at most 200 characters".into()
            )]
        );
    }

    #[test]
    fn a_null_or_blank_title_is_required() {
        for title in [json!(null), json!(""), json!(" \t ")] {
            let err = body(json!({"title": title, "price": 1}))
                .parse(Utc::now())
                .expect_err("blank");
            assert_eq!(fields(err)[0].1, "Title is required", "{title}");
        }
    }

    fn page(limit: Option<&str>, before: Option<&str>) -> Result<Page, ApiError> {
        ListParams {
            limit: limit.map(str::to_string),
            before: before.map(str::to_string),
            ..ListParams::default()
        }
        .parse(false)
        .map(|search| Page {
            limit: search.limit,
            before: search.after.map(|cursor| match cursor {
                Cursor::Newest { id } => id,
                other => panic!("unexpected {other:?}"),
            }),
        })
    }

    /// The page size and the newest-first cursor of a search.
    #[derive(Debug)]
    struct Page {
        limit: i64,
        before: Option<Uuid>,
    }

    #[test]
    fn the_page_size_defaults_to_50_and_stays_within_1_to_100() {
        assert_eq!(page(None, None).expect("default").limit, 50);
        assert_eq!(page(Some("1"), None).expect("min").limit, 1);
        assert_eq!(page(Some("100"), None).expect("max").limit, 100);
        for bad in ["0", "101", "-1", "ten", "", "2.5"] {
            let err = page(Some(bad), None).expect_err(bad);
            assert_eq!(fields(err)[0].0, "limit", "{bad}");
        }
    }

    #[test]
    fn before_must_be_an_id() {
        let id = Uuid::now_v7();
        assert_eq!(
            page(None, Some(&id.to_string())).expect("id").before,
            Some(id)
        );
        let err = page(Some("0"), Some("nope")).expect_err("bad");
        let names: Vec<String> = fields(err).into_iter().map(|(f, _)| f).collect();
        assert_eq!(names, vec!["limit", "before"]);
    }

    fn search(query: &str, signed_in: bool) -> Result<Search, ApiError> {
        let params: ListParams = serde_urlencoded::from_str(query).expect("a query");
        params.parse(signed_in)
    }

    #[test]
    fn a_cursor_reads_back_only_for_its_own_sort() {
        let id = Uuid::now_v7();
        let date = DateTime::parse_from_rfc3339("2030-01-02T03:04:05.123456Z")
            .expect("date")
            .with_timezone(&Utc);
        for (sort, cursor) in [
            (Sort::Newest, Cursor::Newest { id }),
            (
                Sort::Date,
                Cursor::Date {
                    date: Some(date),
                    id,
                },
            ),
            (Sort::Date, Cursor::Date { date: None, id }),
            (Sort::Price, Cursor::Price { price: 1550, id }),
        ] {
            let text = cursor.encode();
            assert_eq!(Cursor::decode(&text, sort), Some(cursor.clone()), "{text}");
            let other = if sort == Sort::Price {
                Sort::Date
            } else {
                Sort::Price
            };
            assert_eq!(
                Cursor::decode(&text, other),
                None,
                "{text} is not a {other:?} cursor"
            );
        }
        assert_eq!(Cursor::decode("not base64!", Sort::Newest), None);
        assert_eq!(
            Cursor::decode(&URL_SAFE_NO_PAD.encode("price|x|y"), Sort::Price),
            None
        );
    }

    #[test]
    fn a_search_keeps_its_filters_as_typed_values() {
        let parsed = search(
            "q=+Tosca+&from=2030-01-01T00:00:00%2B01:00&to=2030-02-01T00:00:00Z&minPrice=10.5&maxPrice=20&sort=price&limit=5",
            false,
        )
        .expect("valid");
        assert_eq!(parsed.q.as_deref(), Some("Tosca"));
        assert_eq!(
            parsed.from.map(|d| d.to_rfc3339()),
            Some("2029-12-31T23:00:00+00:00".into())
        );
        assert_eq!(parsed.min_price, Some(Cents(1050)));
        assert_eq!(parsed.max_price, Some(Cents(2000)));
        assert_eq!(
            (parsed.sort, parsed.limit, parsed.scope),
            (Sort::Price, 5, Scope::Listed)
        );
    }

    #[test]
    fn every_bad_search_parameter_is_reported_on_its_field() {
        let err = search(
            "sort=x&from=y&minPrice=0&maxPrice=-2&seller=you&cursor=z",
            false,
        )
        .expect_err("bad");
        let names: Vec<String> = fields(err).into_iter().map(|(f, _)| f).collect();
        assert_eq!(
            names,
            vec!["sort", "cursor", "from", "minPrice", "maxPrice", "seller"]
        );
    }

    #[test]
    fn seller_me_needs_a_signed_in_user() {
        assert!(matches!(
            search("seller=me", false),
            Err(ApiError::Unauthorized)
        ));
        assert_eq!(
            search("seller=me", true).expect("mine").scope,
            Scope::MyTickets
        );
    }

    #[test]
    fn a_blank_or_null_detail_clears_it_and_an_absent_one_is_kept() {
        let input =
            body(json!({"title": "T", "price": 1, "venue": "", "city": null, "seat": " 7 "}))
                .parse(Utc::now())
                .expect("valid");
        assert_eq!(input.details.venue, Change::Clear);
        assert_eq!(input.details.city, Change::Clear);
        assert_eq!(input.details.seat, Change::Set("7".into()));
        assert_eq!(input.details.row, Change::Keep);
    }
}
