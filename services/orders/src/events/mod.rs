//! The events the orders service consumes, one small listener per subject.
//! Retries, acks, naks and dead-lettering are the shared runtime's
//! (`common::listener::run`); a listener only applies its event and says
//! what became of it.
//!
//! - `ticket.created` / `ticket.updated` keep the tickets replica, by version;
//! - `expiration.complete` cancels an unpaid order;
//! - `payment.created` completes an order.
//!
//! The events this service emits (`order.created`, `order.cancelled`) are
//! written to the outbox by `store`, in the transaction that changes the order.

mod expiration_complete;
mod payment_created;
mod ticket_created;
mod ticket_updated;

pub use expiration_complete::ExpirationCompleteListener;
pub use payment_created::PaymentCreatedListener;
pub use ticket_created::TicketCreatedListener;
pub use ticket_updated::TicketUpdatedListener;
