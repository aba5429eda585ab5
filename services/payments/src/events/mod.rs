//! The events the payments service consumes, one small listener per subject.
//! Retries, acks, naks and dead-lettering are the shared runtime's
//! (`common::listener::run`); a listener only applies its event and says
//! what became of it.
//!
//! - `order.created` adds an order to the replica;
//! - `order.cancelled` marks it cancelled and refunds any charge it kept;
//! - `order.completed` marks it complete, in version order.
//!
//! The event this service emits (`payment.created`) is written to the
//! outbox by `billing`, in the transaction that keeps a charge.

mod order_cancelled;
mod order_completed;
mod order_created;

pub use order_cancelled::OrderCancelledListener;
pub use order_completed::OrderCompletedListener;
pub use order_created::OrderCreatedListener;
