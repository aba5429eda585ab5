//! The events of the expiration service: the one it consumes and the one it
//! emits. Retries, acks, naks and dead-lettering of `order.created` are the
//! shared runtime's (`common::listener::run`).
//!
//! - `order.created` schedules the order's expiration job;
//! - `expiration.complete` is published by that job when the time is up.

pub mod expiration_complete;
mod order_created;

pub use order_created::OrderCreatedListener;
