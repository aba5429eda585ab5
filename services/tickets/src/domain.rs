//! Tickets as the service knows them, and the input of the tickets API parsed
//! into values the handlers can trust.

use serde::Deserialize;
use uuid::Uuid;

use common::events::TicketSnapshot;
use common::money::Cents;
use common::{ApiError, FieldError};

/// The longest accepted title, in characters, after trimming.
pub(crate) const MAX_TITLE_CHARS: usize = 200;

/// Tickets per page when the client does not say.
pub(crate) const DEFAULT_PAGE_SIZE: i64 = 50;

/// The most tickets one page may hold.
pub(crate) const MAX_PAGE_SIZE: i64 = 100;

/// A row of the tickets table.
#[derive(Debug, Clone)]
pub(crate) struct Ticket {
    pub(crate) id: Uuid,
    pub(crate) title: String,
    pub(crate) price: Cents,
    pub(crate) user_id: Uuid,
    pub(crate) order_id: Option<Uuid>,
    pub(crate) version: i64,
}

impl Ticket {
    /// The ticket as ticket.created and ticket.updated carry it.
    pub(crate) fn snapshot(&self) -> TicketSnapshot {
        TicketSnapshot {
            id: self.id,
            version: self.version,
            title: self.title.clone(),
            price: self.price.0,
            user_id: self.user_id,
            order_id: self.order_id,
        }
    }
}

/// The body of create and update. Both fields are optional and the price is
/// any JSON value, so that deserialising never fails on them and every bad
/// field gets its own entry in one 400.
#[derive(Debug, Deserialize)]
pub(crate) struct TicketBody {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    price: serde_json::Value,
}

/// A title and price that passed validation; the title is trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TicketInput {
    pub(crate) title: String,
    pub(crate) price: Cents,
}

impl TicketBody {
    /// A non-blank title of at most 200 characters and a price greater than
    /// zero with at most two decimals; otherwise one entry per bad field.
    pub(crate) fn parse(self) -> Result<TicketInput, ApiError> {
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
        match price {
            Some(price) if errors.is_empty() => Ok(TicketInput { title, price }),
            _ => Err(ApiError::Validation(errors)),
        }
    }
}

/// The query string of the list: `limit` and `before`, kept as text so that
/// a bad value is reported against its field rather than as a bad query.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct PageParams {
    #[serde(default)]
    limit: Option<String>,
    #[serde(default)]
    before: Option<String>,
}

/// One page of the list: at most `limit` tickets older than `before`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Page {
    pub(crate) limit: i64,
    pub(crate) before: Option<Uuid>,
}

impl PageParams {
    /// `limit` must be a whole number from 1 to 100 (default 50); `before`,
    /// when given, a ticket id.
    pub(crate) fn parse(self) -> Result<Page, ApiError> {
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
        let before = match self.before.as_deref().map(str::trim) {
            None => None,
            Some(text) => match Uuid::parse_str(text) {
                Ok(id) => Some(id),
                Err(_) => {
                    errors.push(FieldError::new("before", "Before must be a ticket id"));
                    None
                }
            },
        };
        if errors.is_empty() {
            Ok(Page { limit, before })
        } else {
            Err(ApiError::Validation(errors))
        }
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
            .parse()
            .expect("valid");
        assert_eq!(
            input,
            TicketInput {
                title: "Concert".into(),
                price: Cents(1550)
            }
        );
    }

    #[test]
    fn an_empty_body_gets_one_entry_per_field() {
        let err = body(json!({})).parse().expect_err("invalid");
        let entries = fields(err);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0], ("title".into(), "Title is required".into()));
        assert_eq!(entries[1].0, "price");
    }

    #[test]
    fn titles_may_have_200_characters_after_trimming_and_no_more() {
        let ok = format!("  {}  ", "é".repeat(200));
        assert!(body(json!({"title": ok, "price": 1})).parse().is_ok());
        let err = body(json!({"title": "x".repeat(201), "price": 1}))
            .parse()
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
                .parse()
                .expect_err("blank");
            assert_eq!(fields(err)[0].1, "Title is required", "{title}");
        }
    }

    fn page(limit: Option<&str>, before: Option<&str>) -> Result<Page, ApiError> {
        PageParams {
            limit: limit.map(str::to_string),
            before: before.map(str::to_string),
        }
        .parse()
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
}
