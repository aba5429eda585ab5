//! Prices: accepted as JSON numbers greater than zero with at most two
//! decimals, stored and carried in events as integer cents, rendered back as
//! JSON numbers (`1550` cents is `15.5`).

use serde::{Serialize, Serializer};

/// The largest accepted price, in cents (one million).
pub const MAX_CENTS: i64 = 100_000_000;

/// An amount of money in cents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, sqlx::Type)]
#[sqlx(transparent)]
pub struct Cents(pub i64);

impl Cents {
    /// Parses a price from its JSON value. The error is the message to show
    /// next to the field.
    pub fn parse_price(value: &serde_json::Value) -> Result<Cents, &'static str> {
        const MESSAGE: &str = "Price must be a number greater than 0 with at most two decimals";
        let serde_json::Value::Number(number) = value else {
            return Err(MESSAGE);
        };
        let text = number.to_string();
        if text.starts_with('-') || text.contains(['e', 'E']) {
            return Err(MESSAGE);
        }
        let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
        let fraction = fraction.trim_end_matches('0');
        if fraction.len() > 2 || whole.len() > 12 {
            return Err(MESSAGE);
        }
        let whole: i64 = whole.parse().map_err(|_| MESSAGE)?;
        let fraction: i64 = if fraction.is_empty() {
            0
        } else {
            format!("{fraction:0<2}").parse().map_err(|_| MESSAGE)?
        };
        let cents = whole * 100 + fraction;
        if cents <= 0 {
            return Err(MESSAGE);
        }
        if cents > MAX_CENTS {
            return Err("Price must be at most 1000000");
        }
        Ok(Cents(cents))
    }

    /// The amount as a JSON number of currency units.
    pub fn as_units(self) -> f64 {
        self.0 as f64 / 100.0
    }
}

/// In the API documents: a JSON number of currency units.
impl utoipa::PartialSchema for Cents {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::Number)
            .minimum(Some(0))
            .description(Some(
                "An amount in currency units, with at most two decimals",
            ))
            .examples([serde_json::json!(15.5)])
            .into()
    }
}

impl utoipa::ToSchema for Cents {}

impl Serialize for Cents {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.as_units())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn whole_and_decimal_prices_become_cents() {
        assert_eq!(Cents::parse_price(&json!(15)), Ok(Cents(1500)));
        assert_eq!(Cents::parse_price(&json!(15.5)), Ok(Cents(1550)));
        assert_eq!(Cents::parse_price(&json!(19.99)), Ok(Cents(1999)));
        assert_eq!(Cents::parse_price(&json!(0.01)), Ok(Cents(1)));
        assert_eq!(Cents::parse_price(&json!(0.07)), Ok(Cents(7)));
        assert_eq!(Cents::parse_price(&json!(1e2)), Ok(Cents(10000)));
    }

    #[test]
    fn zero_negative_three_decimals_and_non_numbers_are_rejected() {
        for bad in [
            json!(0),
            json!(-1),
            json!(1.005),
            json!("10"),
            json!(null),
            json!(0.001),
            json!(1e-7),
        ] {
            assert!(Cents::parse_price(&bad).is_err(), "{bad}");
        }
        assert!(Cents::parse_price(&json!(1_000_001)).is_err());
        assert!(Cents::parse_price(&json!(1_000_000)).is_ok());
    }

    #[test]
    fn cents_render_as_units() {
        assert_eq!(
            serde_json::to_value(Cents(1550)).expect("json"),
            json!(15.5)
        );
        assert_eq!(
            serde_json::to_value(Cents(1999)).expect("json"),
            json!(19.99)
        );
        assert_eq!(
            serde_json::to_value(Cents(1500)).expect("json"),
            json!(15.0)
        );
    }
}
