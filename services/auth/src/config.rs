//! The auth service's settings, from the environment: the common ones and
//! `DATABASE_URL`, the users database.

pub use common::config::DatabaseServiceSettings as Settings;
