//! API tests of the tickets service: the real router and listeners on a free
//! port, a fresh database and JetStream namespace per test, the machine's
//! real PostgreSQL and NATS.

mod create;
mod database_outage;
mod health;
mod helpers;
mod list;
mod listeners;
mod search;
mod show;
mod slow_handler;
mod sold;
mod update;
