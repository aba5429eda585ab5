//! What every buytickets service shares, and nothing else: the error type that
//! becomes the HTTP error body, sessions, configuration, telemetry, health and
//! lifecycle, and the event bus (event types, transactional outbox, listener
//! runtime and inbox).

pub mod config;
pub mod db;
pub mod error;
pub mod events;
pub mod extract;
pub mod health;
pub mod http;
pub mod lifecycle;
pub mod money;
pub mod session;
pub mod telemetry;
pub mod trace;

pub mod bus;
pub mod inbox;
pub mod listener;
pub mod outbox;

#[cfg(feature = "testing")]
pub mod testing;

pub use error::{ApiError, FieldError};
