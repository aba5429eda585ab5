//! What the payments service works with: the input of `POST /api/payments`
//! validated into values the handlers can trust, the orders of the replica,
//! and the life-cycle of a payment.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;
use validator::{Validate, ValidationError};

use common::ApiError;
use common::events::OrderStatus;

/// The body of `POST /api/payments`. Both fields are taken as any JSON
/// value so that each missing, null or mistyped field gets its own entry
/// with the API's message rather than the deserialiser's.
#[derive(Debug, Deserialize, Validate, utoipa::ToSchema)]
pub(crate) struct NewPaymentBody {
    /// A card token: from Stripe.js, or one of Stripe's test tokens
    /// (`tok_visa` is charged, `tok_chargeDeclined` is declined).
    #[serde(default)]
    #[schema(required = true, value_type = String, min_length = 1, examples("tok_visa"))]
    #[validate(
        required(message = "token is required"),
        custom(function = "valid_card_token")
    )]
    token: Option<Value>,
    /// The signed-in buyer's order to pay.
    #[serde(default, rename = "orderId")]
    #[schema(required = true, value_type = Uuid)]
    #[validate(
        required(message = "orderId is required"),
        custom(function = "valid_order_id")
    )]
    order_id: Option<Value>,
}

/// A validated request to pay an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NewPayment {
    /// The card token from the client (Stripe.js, or a test token).
    pub(crate) token: String,
    pub(crate) order_id: Uuid,
}

impl NewPaymentBody {
    /// The payment to make; a 400 with one entry per bad field otherwise.
    pub(crate) fn parse(self) -> Result<NewPayment, ApiError> {
        self.validate().map_err(json_field_names)?;
        match (self.token, self.order_id) {
            (Some(Value::String(token)), Some(Value::String(order_id))) => Ok(NewPayment {
                token: token.trim().to_string(),
                order_id: Uuid::parse_str(order_id.trim())
                    .map_err(|_| ApiError::field("orderId", "orderId must be a valid id"))?,
            }),
            // Unreachable after validation; answered like a validation error anyway.
            _ => Err(ApiError::BadRequest(
                "token and orderId are required".into(),
            )),
        }
    }
}

/// The validator names fields as in Rust; the client knows them as in JSON.
fn json_field_names(errors: validator::ValidationErrors) -> ApiError {
    match ApiError::from(errors) {
        ApiError::Validation(mut fields) => {
            for f in &mut fields {
                if f.field.as_deref() == Some("order_id") {
                    f.field = Some("orderId".into());
                }
            }
            fields.sort_by(|a, b| a.field.cmp(&b.field));
            ApiError::Validation(fields)
        }
        other => other,
    }
}

fn invalid(code: &'static str, message: &'static str) -> ValidationError {
    ValidationError::new(code).with_message(Cow::Borrowed(message))
}

/// A card token as Stripe issues them (`tok_…`): letters, digits and `_`.
/// Anything else could not name a card, and must not reach the form body.
fn valid_card_token(value: &Value) -> Result<(), ValidationError> {
    match value {
        Value::String(s) if s.trim().is_empty() => Err(invalid("required", "token is required")),
        Value::String(s)
            if s.trim().len() <= 255
                && s.trim()
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_') =>
        {
            Ok(())
        }
        _ => Err(invalid("token", "token must be a card token")),
    }
}

fn valid_order_id(value: &Value) -> Result<(), ValidationError> {
    match value {
        Value::String(s) if s.trim().is_empty() => Err(invalid("required", "orderId is required")),
        Value::String(s) if Uuid::parse_str(s.trim()).is_ok() => Ok(()),
        _ => Err(invalid("uuid", "orderId must be a valid id")),
    }
}

/// An order as this service's replica knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Order {
    pub(crate) id: Uuid,
    /// The buyer: the only user who may pay it.
    pub(crate) user_id: Uuid,
    /// Cents.
    pub(crate) price: i64,
    pub(crate) status: OrderStatus,
    /// The end of the reservation: after it the order cannot be paid, even
    /// before the orders service has cancelled it.
    pub(crate) expires_at: DateTime<Utc>,
}

/// Where a payment is in its life-cycle (see the `payments` migration).
/// Stored as the lowercase name in the `payments.status` text column, which
/// sqlx reads and writes through this type, so that no status is spelled
/// in SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "lowercase")]
pub(crate) enum PaymentStatus {
    Pending,
    Succeeded,
    Failed,
    Refunding,
    Refunded,
}

impl PaymentStatus {
    /// The statuses of a charge under way or kept: at most one payment of
    /// an order has one (the `payments_order_active_key` index).
    pub(crate) const ACTIVE: [Self; 2] = [Self::Pending, Self::Succeeded];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Refunding => "refunding",
            Self::Refunded => "refunded",
        }
    }
}

/// Why a charge was given back; stored in `refunds.reason` as its
/// snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub(crate) enum RefundReason {
    /// The order was cancelled (its reservation expired) before or after
    /// the charge went through: no ticket, so no charge.
    OrderCancelled,
    /// The order had already been paid by another charge.
    Duplicate,
}

impl RefundReason {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::OrderCancelled => "order_cancelled",
            Self::Duplicate => "duplicate",
        }
    }
}

/// The idempotency key of the `attempt`-th charge of an order: the first is
/// `order-<id>`, the ones after a decline `order-<id>-<attempt>`. A replayed
/// request for the same attempt never charges twice, and a new card after a
/// decline is a new request to Stripe, not a replay of the declined one.
pub(crate) fn charge_key(order_id: Uuid, attempt: i32) -> String {
    if attempt <= 1 {
        format!("order-{order_id}")
    } else {
        format!("order-{order_id}-{attempt}")
    }
}

/// The idempotency key of the refund of a payment: refunding it again
/// (a retry, a redelivered event, the reconciler) never refunds twice.
pub(crate) fn refund_key(payment_id: Uuid) -> String {
    format!("refund-{payment_id}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(body: Value) -> Result<NewPayment, ApiError> {
        serde_json::from_value::<NewPaymentBody>(body)
            .expect("any object deserialises")
            .parse()
    }

    fn fields_of(err: ApiError) -> Vec<(String, String)> {
        match err {
            ApiError::Validation(fields) => fields
                .into_iter()
                .map(|f| (f.field.unwrap_or_default(), f.message))
                .collect(),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_token_and_an_order_id_make_a_payment() {
        let id = Uuid::now_v7();
        assert_eq!(
            parse(json!({"token": "tok_visa", "orderId": id})).ok(),
            Some(NewPayment {
                token: "tok_visa".into(),
                order_id: id
            })
        );
    }

    #[test]
    fn missing_fields_get_one_entry_each() {
        let err = parse(json!({})).expect_err("invalid");
        assert_eq!(
            fields_of(err),
            vec![
                ("orderId".into(), "orderId is required".into()),
                ("token".into(), "token is required".into())
            ]
        );
    }

    #[test]
    fn null_and_blank_fields_are_required() {
        let err = parse(json!({"token": " ", "orderId": null})).expect_err("invalid");
        assert_eq!(
            fields_of(err),
            vec![
                ("orderId".into(), "orderId is required".into()),
                ("token".into(), "token is required".into())
            ]
        );
    }

    #[test]
    fn mistyped_fields_are_invalid() {
        let err = parse(json!({"token": "tok visa&x=1", "orderId": 12})).expect_err("invalid");
        assert_eq!(
            fields_of(err),
            vec![
                ("orderId".into(), "orderId must be a valid id".into()),
                ("token".into(), "token must be a card token".into())
            ]
        );
    }

    #[test]
    fn charge_keys_name_the_order_and_the_attempt() {
        let id = Uuid::now_v7();
        assert_eq!(charge_key(id, 1), format!("order-{id}"));
        assert_eq!(charge_key(id, 2), format!("order-{id}-2"));
    }
}
