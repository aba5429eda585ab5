//! `expiration.complete`, the event this service emits when an order's time
//! is up. Its id is derived from the order id alone, so whichever replica
//! runs the job, and however often, the message id is the same: JetStream
//! keeps one copy within its duplicate window, and the orders service's
//! inbox recognises any later copy by the same id.

use anyhow::Context as _;
use bytes::Bytes;
use common::bus::Bus;
use common::events::{Event as _, ExpirationComplete};
use uuid::Uuid;

/// The namespace of the name-based (v5) ids of `expiration.complete`.
/// Changing it would give every pending expiration a new id.
pub const EVENT_ID_NAMESPACE: Uuid = Uuid::from_u128(0xf0a9_b4c5_52bf_41f4_a404_ef68_6a53_563d);

/// The id (`Nats-Msg-Id`) of the `expiration.complete` of `order_id`.
pub fn event_id(order_id: Uuid) -> Uuid {
    Uuid::new_v5(&EVENT_ID_NAMESPACE, order_id.as_bytes())
}

/// Publishes the `expiration.complete` of `order_id`, as the outbox relay
/// publishes events (JSON payload, the id as `Nats-Msg-Id`, no other
/// headers), and waits until JetStream has stored it. Returns the event id.
/// Publishing it again is harmless.
pub async fn publish(bus: &Bus, order_id: Uuid) -> anyhow::Result<Uuid> {
    let id = event_id(order_id);
    let payload = serde_json::to_vec(&ExpirationComplete { order_id })
        .context("encoding expiration.complete")?;
    bus.publish(ExpirationComplete::SUBJECT, id, Bytes::from(payload), &[])
        .await?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_event_id_is_stable_per_order_and_name_based() {
        let order = Uuid::now_v7();
        assert_eq!(event_id(order), event_id(order));
        assert_ne!(event_id(order), event_id(Uuid::now_v7()));
        assert_eq!(event_id(order).get_version_num(), 5);
    }

    #[test]
    fn the_event_id_of_a_known_order_never_changes() {
        // Pinned (computed independently): another id for the same order
        // would let a job scheduled before an upgrade and re-run after it
        // publish a second, differently identified event.
        let order = Uuid::parse_str("01900000-0000-7000-8000-000000000001").expect("uuid");
        assert_eq!(
            event_id(order).to_string(),
            "bcef8f75-d309-5648-a42a-defa82732206"
        );
    }
}
