//! Tests of the event bus against the machine's real PostgreSQL and NATS
//! JetStream: each test has its own database and its own stream namespace.

mod helpers;
mod listener;
mod outbox;
mod streams;
