//! The expiration service: ends reservations on time. For every
//! `order.created` it keeps a job in Redis, due at the order's `expiresAt`;
//! when the job runs it publishes `expiration.complete`, on which the orders
//! service cancels the order if it is still unpaid. It owns no database and
//! serves no API beyond its health probes.

pub mod config;
pub mod events;
pub mod jobs;
pub mod startup;

mod worker;

/// The service's name: its durable consumer and its workers carry it.
pub const SERVICE: &str = "expiration";
