//! What the orders service works with: the input of `POST /api/orders`
//! parsed into an id the handlers can trust, and orders with their tickets.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use common::ApiError;
use common::events::OrderStatus;
use common::money::Cents;

/// The body of `POST /api/orders`. `ticketId` is taken as any JSON value so
/// that a missing, null or mistyped id gets the API's own message rather
/// than the deserialiser's.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(crate) struct NewOrderBody {
    /// The ticket to reserve.
    #[serde(default, rename = "ticketId")]
    #[schema(required = true, value_type = Uuid)]
    ticket_id: Option<Value>,
}

impl NewOrderBody {
    /// The id of the ticket to reserve; a 400 on `ticketId` when it is
    /// missing or not a UUID.
    pub(crate) fn ticket_id(self) -> Result<Uuid, ApiError> {
        const FIELD: &str = "ticketId";
        match self.ticket_id {
            None | Some(Value::Null) => Err(ApiError::field(FIELD, "ticketId is required")),
            Some(Value::String(s)) if s.trim().is_empty() => {
                Err(ApiError::field(FIELD, "ticketId is required"))
            }
            Some(Value::String(s)) => Uuid::parse_str(s.trim())
                .map_err(|_| ApiError::field(FIELD, "ticketId must be a valid id")),
            Some(_) => Err(ApiError::field(FIELD, "ticketId must be a valid id")),
        }
    }
}

/// A ticket as this service's replica knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ticket {
    pub(crate) id: Uuid,
    pub(crate) title: String,
    pub(crate) price: Cents,
    /// The seller.
    pub(crate) user_id: Uuid,
    pub(crate) version: i64,
    /// When its event takes place, if the seller said.
    pub(crate) event_date: Option<DateTime<Utc>>,
}

/// An order and the ticket it holds (or held, once cancelled).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Order {
    pub(crate) id: Uuid,
    pub(crate) user_id: Uuid,
    pub(crate) status: OrderStatus,
    pub(crate) expires_at: DateTime<Utc>,
    pub(crate) version: i64,
    pub(crate) ticket: Ticket,
}

impl Order {
    /// Unpaid, and its reservation has run out at `now`.
    pub(crate) fn is_overdue(&self, now: DateTime<Utc>) -> bool {
        matches!(
            self.status,
            OrderStatus::Created | OrderStatus::AwaitingPayment
        ) && self.expires_at <= now
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(body: Value) -> Result<Uuid, ApiError> {
        serde_json::from_value::<NewOrderBody>(body)
            .expect("any object deserialises")
            .ticket_id()
    }

    fn field_of(err: ApiError) -> (String, String) {
        match err {
            ApiError::Validation(fields) => (
                fields[0].field.clone().unwrap_or_default(),
                fields[0].message.clone(),
            ),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_uuid_string_is_the_ticket_id() {
        let id = Uuid::now_v7();
        assert_eq!(parse(json!({"ticketId": id})).ok(), Some(id));
    }

    #[test]
    fn a_missing_null_or_blank_ticket_id_is_required() {
        for body in [
            json!({}),
            json!({"ticketId": null}),
            json!({"ticketId": " "}),
        ] {
            let err = parse(body.clone()).expect_err("invalid");
            assert_eq!(
                field_of(err),
                ("ticketId".into(), "ticketId is required".into()),
                "{body}"
            );
        }
    }

    #[test]
    fn anything_but_a_uuid_string_is_not_a_valid_id() {
        for body in [
            json!({"ticketId": "abc"}),
            json!({"ticketId": 12}),
            json!({"ticketId": {}}),
        ] {
            let err = parse(body.clone()).expect_err("invalid");
            assert_eq!(
                field_of(err),
                ("ticketId".into(), "ticketId must be a valid id".into()),
                "{body}"
            );
        }
    }
}
