//! Types of the HTTP contract that several services and the web client
//! share, and that the events carry too: one definition, so that the
//! JSON the APIs answer, the events and the pages never disagree.

use serde::{Deserialize, Serialize};

/// The life-cycle of an order, as its JSON string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum OrderStatus {
    /// Reserved, not yet paid.
    #[serde(rename = "created")]
    Created,
    /// A payment is under way.
    #[serde(rename = "awaiting:payment")]
    AwaitingPayment,
    /// Paid; the ticket is sold.
    #[serde(rename = "complete")]
    Complete,
    /// Cancelled by the buyer or expired; the ticket is free again.
    #[serde(rename = "cancelled")]
    Cancelled,
}

impl OrderStatus {
    /// The status as its JSON string (and as stored).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::AwaitingPayment => "awaiting:payment",
            Self::Complete => "complete",
            Self::Cancelled => "cancelled",
        }
    }
}

impl std::str::FromStr for OrderStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "created" => Ok(Self::Created),
            "awaiting:payment" => Ok(Self::AwaitingPayment),
            "complete" => Ok(Self::Complete),
            "cancelled" => Ok(Self::Cancelled),
            other => Err(format!("unknown order status {other:?}")),
        }
    }
}

/// Where a listed ticket stands, as its JSON string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TicketStatus {
    /// Listed and free to reserve.
    Available,
    /// Held by an order until it is paid or its reservation ends.
    Reserved,
    /// Paid for; it can no longer be edited or reserved.
    Sold,
}

impl TicketStatus {
    /// The status as its JSON string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Available => "available",
            Self::Reserved => "reserved",
            Self::Sold => "sold",
        }
    }
}
