//! Small values the templates show: prices, time left, form errors, order
//! states in words.

use std::fmt;

use chrono::{DateTime, Utc};
use common::events::OrderStatus;

use crate::api::{Order, Refusal};

/// An amount in cents, shown as dollars (`$15.50`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Price(pub(crate) i64);

impl Price {
    /// From the APIs' JSON number of currency units (`15.5`).
    pub(crate) fn from_units(units: f64) -> Self {
        Self((units * 100.0).round() as i64)
    }

    /// The amount as a seller types it in a form (`15.50`).
    pub(crate) fn input(&self) -> String {
        format!("{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

impl fmt::Display for Price {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "${}", self.input())
    }
}

/// A day as people read it: `1 Dec 2026`.
pub(crate) fn day(at: DateTime<Utc>) -> String {
    at.format("%-d %b %Y").to_string()
}

/// A date and time as people read it: `Tue 1 Dec 2026, 20:00 UTC`.
pub(crate) fn when(at: DateTime<Utc>) -> String {
    at.format("%a %-d %b %Y, %H:%M UTC").to_string()
}

/// Whole seconds from `now` until `until`, never negative.
pub(crate) fn seconds_left(until: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    (until - now).num_seconds().max(0)
}

/// `m:ss`, or `h:mm:ss` from an hour on: the same text the countdown script
/// writes, so that the page reads the same with and without JavaScript.
pub(crate) fn clock(seconds: i64) -> String {
    let (h, m, s) = (seconds / 3600, (seconds % 3600) / 60, seconds % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

/// What a buyer should read about an order, at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OrderState {
    /// Reserved and payable.
    Reserved,
    /// Paid.
    Complete,
    /// Its time ran out (whether or not the cancellation has landed yet).
    Expired,
    /// Cancelled before its time ran out.
    Cancelled,
}

impl OrderState {
    pub(crate) fn of(order: &Order, now: DateTime<Utc>) -> Self {
        let time_is_up = order.expires_at <= now;
        match order.status {
            OrderStatus::Complete => Self::Complete,
            OrderStatus::Cancelled if time_is_up => Self::Expired,
            OrderStatus::Cancelled => Self::Cancelled,
            OrderStatus::Created | OrderStatus::AwaitingPayment if time_is_up => Self::Expired,
            OrderStatus::Created | OrderStatus::AwaitingPayment => Self::Reserved,
        }
    }

    /// The word shown in lists.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Reserved => "Awaiting payment",
            Self::Complete => "Complete",
            Self::Expired => "Expired",
            Self::Cancelled => "Cancelled",
        }
    }

    /// A CSS class for the badge.
    pub(crate) fn class(self) -> &'static str {
        match self {
            Self::Reserved => "badge badge-pending",
            Self::Complete => "badge badge-ok",
            Self::Expired | Self::Cancelled => "badge badge-muted",
        }
    }

    pub(crate) fn is_reserved(self) -> bool {
        self == Self::Reserved
    }
}

/// The errors of a submitted form: those of one field are shown next to it,
/// the others above the form.
#[derive(Debug, Clone, Default)]
pub(crate) struct FormErrors {
    entries: Vec<(Option<String>, String)>,
}

impl FormErrors {
    pub(crate) fn none() -> Self {
        Self::default()
    }

    /// The API's entries. An entry naming a field the form does not have
    /// (`fields`) is shown above the form, so nothing is lost.
    pub(crate) fn from_refusal(refusal: &Refusal, fields: &[&str]) -> Self {
        Self {
            entries: refusal
                .errors
                .iter()
                .map(|e| {
                    let field = e.field.clone().filter(|f| fields.contains(&f.as_str()));
                    (field, e.message.clone())
                })
                .collect(),
        }
    }

    /// One message about `field`.
    pub(crate) fn about(field: &str, message: &str) -> Self {
        Self {
            entries: vec![(Some(field.to_string()), message.to_string())],
        }
    }

    /// The first message about `field`.
    pub(crate) fn field(&self, field: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(f, _)| f.as_deref() == Some(field))
            .map(|(_, m)| m.as_str())
    }

    /// Messages about no field in particular.
    pub(crate) fn general_messages(&self) -> Vec<&str> {
        self.entries
            .iter()
            .filter(|(f, _)| f.is_none())
            .map(|(_, m)| m.as_str())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_show_two_decimals() {
        assert_eq!(Price::from_units(15.5).to_string(), "$15.50");
        assert_eq!(Price::from_units(0.07).to_string(), "$0.07");
        assert_eq!(Price::from_units(19.99).input(), "19.99");
        assert_eq!(Price::from_units(1_000_000.0).to_string(), "$1000000.00");
    }

    #[test]
    fn the_clock_reads_like_the_countdown_script() {
        assert_eq!(clock(0), "0:00");
        assert_eq!(clock(65), "1:05");
        assert_eq!(clock(900), "15:00");
        assert_eq!(clock(3725), "1:02:05");
    }

    #[test]
    fn time_left_is_never_negative() {
        let now = Utc::now();
        assert_eq!(seconds_left(now - chrono::Duration::seconds(5), now), 0);
        assert_eq!(seconds_left(now + chrono::Duration::seconds(90), now), 90);
    }
}
