//! The notifications service: the e-mails buyers and sellers get (welcome,
//! reservation confirmed, reminder, payment received, reservation expired,
//! refund issued, ticket sold). It keeps replicas of users, tickets and
//! orders from their services' events, writes each mail once under a unique
//! key before sending it, and sends it through SMTP (or into a directory of
//! `.eml` files for local use), retrying while the server is unreachable.

pub mod config;
pub mod events;
pub mod mails;
pub mod reminders;
pub mod sender;
pub mod startup;

mod store;

/// The service's own migrations (the shared outbox/inbox ones run too).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The service's name: its durable consumers carry it.
pub const SERVICE: &str = "notifications";
