//! Fault drills on the real services wired together: each starts what it
//! breaks (its own nats-server, replicas in runtimes of their own, fault
//! proxies in front of PostgreSQL), breaks it in the middle of real work,
//! and checks that nothing was lost or applied twice. Each prints what it
//! measured (`cargo nextest run -p buytickets-suite --test drills
//! --no-capture` shows it).

mod helpers;
mod nats_outage;
mod replica_kill;
