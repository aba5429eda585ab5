//! The tickets service's settings, from the environment: the common ones and
//! `DATABASE_URL`, the tickets database.

pub use common::config::DatabaseServiceSettings as Settings;
