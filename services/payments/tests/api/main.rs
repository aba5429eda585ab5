//! API tests of the payments service: the real router, relay, listeners and
//! reconciler on a free port, a fresh database and JetStream namespace per
//! test, the machine's real PostgreSQL and NATS, and a local stub of
//! Stripe's HTTP API in place of Stripe.

mod anonymous;
mod decline;
mod health;
mod helpers;
mod late;
mod pay;
mod replica;
mod simulated;
mod webhook;
