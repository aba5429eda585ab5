//! Every event of the system: its subject and its JSON payload, defined once.
//! The event's id is not in the payload; it travels as the `Nats-Msg-Id`
//! header, so JetStream drops a re-published duplicate and listeners can
//! de-duplicate events that carry no version.
//!
//! Prices in events are integer cents.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A JetStream stream: one per publishing service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    /// `USERS`: user.* from auth.
    Users,
    /// `TICKETS`: ticket.* from tickets.
    Tickets,
    /// `ORDERS`: order.* from orders.
    Orders,
    /// `EXPIRATION`: expiration.* from expiration.
    Expiration,
    /// `PAYMENTS`: payment.* from payments.
    Payments,
    /// Messages a listener gave up on, with the reason.
    DeadLetter,
}

impl Stream {
    /// Every stream, so that any service can set them all up at start.
    pub const ALL: [Stream; 6] = [
        Stream::Users,
        Stream::Tickets,
        Stream::Orders,
        Stream::Expiration,
        Stream::Payments,
        Stream::DeadLetter,
    ];

    /// The stream's name, before any deployment prefix.
    pub fn name(self) -> &'static str {
        match self {
            Self::Users => "USERS",
            Self::Tickets => "TICKETS",
            Self::Orders => "ORDERS",
            Self::Expiration => "EXPIRATION",
            Self::Payments => "PAYMENTS",
            Self::DeadLetter => "DEADLETTER",
        }
    }

    /// The subjects the stream holds, before any deployment prefix.
    pub fn subjects(self) -> &'static str {
        match self {
            Self::Users => "user.>",
            Self::Tickets => "ticket.>",
            Self::Orders => "order.>",
            Self::Expiration => "expiration.>",
            Self::Payments => "payment.>",
            Self::DeadLetter => "deadletter.>",
        }
    }

    /// The stream that holds `subject` (unprefixed).
    pub fn of(subject: &str) -> Option<Stream> {
        let head = subject.split('.').next()?;
        Stream::ALL
            .into_iter()
            .find(|s| s.subjects().strip_suffix(".>") == Some(head))
    }
}

/// An event type: its payload is the type itself, its subject a constant.
pub trait Event: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The subject, before any deployment prefix, e.g. `ticket.created`.
    const SUBJECT: &'static str;

    /// The entity whose events must be applied in order, e.g. the ticket of
    /// `ticket.updated`. A listener handles events of one key one at a time,
    /// in delivery order, and events of different keys concurrently. `None`
    /// (an event about no single entity) lets the event go to any lane.
    fn ordering_key(&self) -> Option<Uuid> {
        None
    }
}

/// A ticket as the tickets service publishes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TicketSnapshot {
    /// The ticket's id.
    pub id: Uuid,
    /// Bumped by every change; replicas apply v only on top of v − 1.
    pub version: i64,
    /// What the seller calls it.
    pub title: String,
    /// Cents.
    pub price: i64,
    /// The seller.
    pub user_id: Uuid,
    /// The order holding it, while one does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<Uuid>,
    /// What the ticket is for and where the seat is. Every field is optional
    /// so that events published before they existed still decode.
    #[serde(default, flatten)]
    pub details: EventDetails,
}

/// What a ticket is for: the event, its place and time, and the seat.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventDetails {
    /// The concert, match or show.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_name: Option<String>,
    /// Where it takes place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub venue: Option<String>,
    /// The venue's town.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    /// When it starts; a ticket leaves the listings once it has passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_date: Option<DateTime<Utc>>,
    /// The seat's section, row and number, as printed on the ticket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section: Option<String>,
    /// See `section`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row: Option<String>,
    /// See `section`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seat: Option<String>,
}

/// `ticket.created`: a ticket was listed (version 0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TicketCreated(pub TicketSnapshot);

impl Event for TicketCreated {
    const SUBJECT: &'static str = "ticket.created";

    fn ordering_key(&self) -> Option<Uuid> {
        Some(self.0.id)
    }
}

/// `ticket.updated`: a ticket changed (edited, reserved or released); the
/// version is one more than the previous event's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TicketUpdated(pub TicketSnapshot);

impl Event for TicketUpdated {
    const SUBJECT: &'static str = "ticket.updated";

    fn ordering_key(&self) -> Option<Uuid> {
        Some(self.0.id)
    }
}

/// Order statuses are part of the HTTP contract too; events carry them.
pub use crate::contract::OrderStatus;

/// The ticket an order holds, as `order.created` carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderTicket {
    /// The ticket's id.
    pub id: Uuid,
    /// Cents.
    pub price: i64,
}

/// `order.created`: a buyer reserved a ticket until `expiresAt`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderCreated {
    /// The order's id.
    pub id: Uuid,
    /// 0 when created; bumped by every change.
    pub version: i64,
    /// Its status when the event was written.
    pub status: OrderStatus,
    /// The buyer.
    pub user_id: Uuid,
    /// When the reservation runs out unless paid.
    pub expires_at: DateTime<Utc>,
    /// The ticket it holds and its price.
    pub ticket: OrderTicket,
}

impl Event for OrderCreated {
    const SUBJECT: &'static str = "order.created";

    fn ordering_key(&self) -> Option<Uuid> {
        Some(self.id)
    }
}

/// The ticket a cancelled order released.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketRef {
    /// The ticket's id.
    pub id: Uuid,
}

/// `order.cancelled`: the reservation ended without payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCancelled {
    /// The order's id.
    pub id: Uuid,
    /// The order's version after the cancellation.
    pub version: i64,
    /// The ticket it released.
    pub ticket: TicketRef,
}

impl Event for OrderCancelled {
    const SUBJECT: &'static str = "order.cancelled";

    fn ordering_key(&self) -> Option<Uuid> {
        Some(self.id)
    }
}

/// `order.completed`: the order was paid and its ticket is sold. The version
/// is the order's after completion, one more than the version before it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCompleted {
    /// The order.
    pub id: Uuid,
    /// The order's version after completion.
    pub version: i64,
    /// The ticket it bought.
    pub ticket: TicketRef,
}

impl Event for OrderCompleted {
    const SUBJECT: &'static str = "order.completed";

    fn ordering_key(&self) -> Option<Uuid> {
        Some(self.id)
    }
}

/// `expiration.complete`: an order's reservation time is up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExpirationComplete {
    /// The order whose time is up.
    pub order_id: Uuid,
}

impl Event for ExpirationComplete {
    const SUBJECT: &'static str = "expiration.complete";

    fn ordering_key(&self) -> Option<Uuid> {
        Some(self.order_id)
    }
}

/// `payment.created`: an order was paid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentCreated {
    /// The payment's id.
    pub id: Uuid,
    /// The order it paid.
    pub order_id: Uuid,
    /// The provider's id of the charge (a PaymentIntent's `pi_…`).
    pub stripe_id: String,
}

impl Event for PaymentCreated {
    const SUBJECT: &'static str = "payment.created";

    fn ordering_key(&self) -> Option<Uuid> {
        Some(self.order_id)
    }
}

/// `user.created`: someone signed up (version 0; later changes of the user
/// carry the next versions).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserCreated {
    /// The user's id.
    pub id: Uuid,
    /// Lower-cased, as auth stores it.
    pub email: String,
    /// 0 for a new user.
    pub version: i64,
}

impl Event for UserCreated {
    const SUBJECT: &'static str = "user.created";
}

/// `user.banned`: an admin banned the user; every service refuses them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserBanned {
    /// The user's id.
    pub id: Uuid,
    /// The user's version after the ban; a ban state applies only over an
    /// older one.
    pub version: i64,
    /// Why, as the admin wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Event for UserBanned {
    const SUBJECT: &'static str = "user.banned";

    fn ordering_key(&self) -> Option<Uuid> {
        Some(self.id)
    }
}

/// `user.unbanned`: an admin lifted the user's ban.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserUnbanned {
    /// The user's id.
    pub id: Uuid,
    /// The user's version after the unban.
    pub version: i64,
    /// Why, as the admin wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Event for UserUnbanned {
    const SUBJECT: &'static str = "user.unbanned";

    fn ordering_key(&self) -> Option<Uuid> {
        Some(self.id)
    }
}

/// `payment.refunded`: a charge was given back (it arrived after its order
/// ended, or the order was already paid).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRefunded {
    /// The refund's id.
    pub id: Uuid,
    /// The order the charge was for.
    pub order_id: Uuid,
    /// The charge given back.
    pub payment_id: Uuid,
    /// Cents given back.
    pub amount: i64,
}

impl Event for PaymentRefunded {
    const SUBJECT: &'static str = "payment.refunded";
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn round_trip<E: Event + PartialEq + std::fmt::Debug>(event: &E, expected: serde_json::Value) {
        let value = serde_json::to_value(event).expect("serialise");
        assert_eq!(value, expected, "{}", E::SUBJECT);
        let back: E = serde_json::from_value(value).expect("deserialise");
        assert_eq!(&back, event);
        assert!(
            Stream::of(E::SUBJECT).is_some(),
            "{} has a stream",
            E::SUBJECT
        );
    }

    fn ids() -> (Uuid, Uuid, Uuid) {
        (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7())
    }

    #[test]
    fn ticket_events_round_trip() {
        let (id, user, order) = ids();
        let snap = TicketSnapshot {
            id,
            version: 2,
            title: "Concert".into(),
            price: 1550,
            user_id: user,
            order_id: Some(order),
            details: EventDetails::default(),
        };
        let expected = json!({"id": id, "version": 2, "title": "Concert", "price": 1550, "userId": user, "orderId": order});
        round_trip(&TicketUpdated(snap.clone()), expected);
        let free = TicketSnapshot {
            order_id: None,
            ..snap
        };
        let expected =
            json!({"id": id, "version": 2, "title": "Concert", "price": 1550, "userId": user});
        round_trip(&TicketCreated(free), expected);
    }

    #[test]
    fn order_events_round_trip() {
        let (id, user, ticket) = ids();
        let expires_at = DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
            .expect("time")
            .with_timezone(&Utc);
        let created = OrderCreated {
            id,
            version: 0,
            status: OrderStatus::Created,
            user_id: user,
            expires_at,
            ticket: OrderTicket {
                id: ticket,
                price: 2000,
            },
        };
        round_trip(
            &created,
            json!({"id": id, "version": 0, "status": "created", "userId": user,
                   "expiresAt": "2026-01-02T03:04:05Z", "ticket": {"id": ticket, "price": 2000}}),
        );
        let cancelled = OrderCancelled {
            id,
            version: 1,
            ticket: TicketRef { id: ticket },
        };
        round_trip(
            &cancelled,
            json!({"id": id, "version": 1, "ticket": {"id": ticket}}),
        );
    }

    #[test]
    fn ticket_events_carry_event_details() {
        let (id, user, _) = ids();
        let event_date = DateTime::parse_from_rfc3339("2027-06-01T20:00:00+02:00")
            .expect("time")
            .with_timezone(&Utc);
        let snap = TicketSnapshot {
            id,
            version: 3,
            title: "Front row".into(),
            price: 9900,
            user_id: user,
            order_id: None,
            details: EventDetails {
                event_name: Some("Tosca".into()),
                venue: Some("La Scala".into()),
                city: Some("Milan".into()),
                event_date: Some(event_date),
                section: Some("Stalls".into()),
                row: Some("A".into()),
                seat: Some("12".into()),
            },
        };
        round_trip(
            &TicketUpdated(snap),
            json!({"id": id, "version": 3, "title": "Front row", "price": 9900, "userId": user,
                   "eventName": "Tosca", "venue": "La Scala", "city": "Milan",
                   "eventDate": "2027-06-01T18:00:00Z", "section": "Stalls", "row": "A",
                   "seat": "12"}),
        );
    }

    #[test]
    fn ticket_events_published_before_event_details_still_decode() {
        let (id, user, _) = ids();
        let old = json!({"id": id, "version": 0, "title": "Concert", "price": 100, "userId": user});
        let TicketCreated(snap) = serde_json::from_value(old).expect("an old event decodes");
        assert_eq!(snap.details, EventDetails::default());
    }

    #[test]
    fn order_completed_round_trips() {
        let (id, ticket, _) = ids();
        round_trip(
            &OrderCompleted {
                id,
                version: 2,
                ticket: TicketRef { id: ticket },
            },
            json!({"id": id, "version": 2, "ticket": {"id": ticket}}),
        );
    }

    #[test]
    fn expiration_and_payment_events_round_trip() {
        let (order, payment, _) = ids();
        round_trip(
            &ExpirationComplete { order_id: order },
            json!({"orderId": order}),
        );
        round_trip(
            &PaymentCreated {
                id: payment,
                order_id: order,
                stripe_id: "pi_123".into(),
            },
            json!({"id": payment, "orderId": order, "stripeId": "pi_123"}),
        );
    }

    #[test]
    fn user_and_refund_events_round_trip() {
        let (id, order, payment) = ids();
        round_trip(
            &UserCreated {
                id,
                email: "a@b.com".into(),
                version: 0,
            },
            json!({"id": id, "email": "a@b.com", "version": 0}),
        );
        round_trip(
            &PaymentRefunded {
                id,
                order_id: order,
                payment_id: payment,
                amount: 1550,
            },
            json!({"id": id, "orderId": order, "paymentId": payment, "amount": 1550}),
        );
    }

    #[test]
    fn ban_events_round_trip_and_the_reason_is_optional() {
        let (id, _, _) = ids();
        round_trip(
            &UserBanned {
                id,
                version: 1,
                reason: Some("fraud".into()),
            },
            json!({"id": id, "version": 1, "reason": "fraud"}),
        );
        round_trip(
            &UserUnbanned {
                id,
                version: 2,
                reason: None,
            },
            json!({"id": id, "version": 2}),
        );
    }

    #[test]
    fn order_statuses_are_the_documented_strings() {
        for (status, text) in [
            (OrderStatus::Created, "created"),
            (OrderStatus::AwaitingPayment, "awaiting:payment"),
            (OrderStatus::Complete, "complete"),
            (OrderStatus::Cancelled, "cancelled"),
        ] {
            assert_eq!(serde_json::to_value(status).expect("json"), json!(text));
            assert_eq!(text.parse::<OrderStatus>(), Ok(status));
            assert_eq!(status.as_str(), text);
        }
    }
}
