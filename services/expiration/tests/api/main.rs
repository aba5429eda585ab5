//! Tests of the expiration service: the real listener and apalis worker
//! against the machine's real Redis and NATS JetStream, with a JetStream
//! namespace and a Redis key prefix of their own per test.

mod failures;
mod health;
mod helpers;
mod redis_crash;
mod replicas;
mod restart;
mod scheduling;
