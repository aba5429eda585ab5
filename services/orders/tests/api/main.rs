//! API tests of the orders service: the real router, relay and listeners on
//! a free port, a fresh database and JetStream namespace per test, the
//! machine's real PostgreSQL and NATS.

mod anonymous;
mod cancel;
mod create;
mod expiration;
mod health;
mod helpers;
mod hot_ticket;
mod overdue;
mod payment;
mod read;
mod replica;
