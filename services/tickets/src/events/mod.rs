//! The events the tickets service consumes: order.created reserves a ticket,
//! order.cancelled releases it, order.completed sells it. Each change bumps the ticket's version and
//! enqueues a ticket.updated in the same transaction. The retry, ack and
//! dead-letter rules are common::listener's.

mod order_cancelled;
mod order_completed;
mod order_created;

pub(crate) use order_cancelled::OrderCancelledListener;
pub(crate) use order_completed::OrderCompletedListener;
pub(crate) use order_created::OrderCreatedListener;
