//! API tests of the tickets service: the real router and listeners on a free
//! port, a fresh database and JetStream namespace per test, the machine's
//! real PostgreSQL and NATS.

mod create;
mod health;
mod helpers;
mod list;
mod listeners;
mod search;
mod show;
mod sold;
mod update;
