//! End-to-end tests of the suite binary that `scripts/dev up` runs: the real
//! process, on its own port, with fresh databases and its own JetStream
//! namespace, driven over HTTP through the ingress routes.

mod helpers;
mod metrics;
mod openapi;
mod payment;
mod purchase;
mod sessions;
mod users;
