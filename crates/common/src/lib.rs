//! What every buytickets service shares, and nothing else.
//!
//! # Layout
//!
//! - HTTP: [`error`] (the one error type and its body
//!   `{"errors":[{"message","field"?}]}`), [`extract`] (JSON and path
//!   extractors that answer in that body), [`http`] (the middleware every
//!   router gets, cross-origin protection included), [`client_ip`] (who is
//!   asking, through trusted proxies), [`completion`] (requests run to
//!   completion, with a timeout), [`idempotency`] (`Idempotency-Key` on
//!   POSTs), [`health`] (`/healthz`, `/readyz`: ready or degraded), [`metrics`]
//!   (`/metrics` and the samplers behind it), [`contract`] (types
//!   of the API that the services and the web client share), [`openapi`]
//!   (what every service's OpenAPI document shares).
//! - Sessions and settings: [`session`] (the signed cookies and the
//!   `CurrentUser` extractor), [`deny`] (revoked tokens and bans, in Redis), [`config`] (settings from the environment,
//!   validated at start), [`money`].
//! - Process: [`telemetry`] (logs), [`lifecycle`] (signals, graceful
//!   shutdown, `run_service`), [`startup`] (the start-up every service
//!   shares: database, migrations, bus, relay, listeners, readiness),
//!   [`db`] (pool and migrations).
//! - Events: [`events`] (every payload and its subject, once), [`bus`]
//!   (JetStream and the deployment's namespace), [`outbox`] (the
//!   transactional outbox and its relay), [`listener`] (durable consumers
//!   with the retry, ack and dead-letter rules), [`inbox`] (de-duplication
//!   of events without a version).
//! - `testing` (feature `testing`): the kit every service's tests use
//!   against the real PostgreSQL, NATS and Redis.

#![warn(missing_docs)]

pub mod client_ip;
pub mod completion;
pub mod config;
pub mod contract;
pub mod db;
pub mod deny;
pub mod error;
pub mod events;
pub mod extract;
pub mod health;
pub mod http;
pub mod idempotency;
pub mod lifecycle;
pub mod metrics;
pub mod money;
pub mod openapi;
pub mod session;
pub mod startup;
pub mod telemetry;
pub mod trace;

pub mod bus;
pub mod inbox;
pub mod listener;
pub mod outbox;

#[cfg(feature = "testing")]
pub mod testing;

pub use error::{ApiError, FieldError};
