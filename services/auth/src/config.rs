//! The auth service's settings, from the environment: the common ones,
//! `DATABASE_URL` (the users database) and the front door's rate limits.

use common::config::{CommonSettings, ConfigError, database_url};

pub use crate::front_door::{FrontDoorSettings, Limit};

/// Everything the auth service is configured with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Port, NATS, sessions, logs and shutdown, as every service has them.
    pub common: CommonSettings,
    /// The service's own database (see [`common::config::database_url`]).
    pub database_url: String,
    /// The rate limits of sign-in and sign-up, and how the client IP is found.
    pub front_door: FrontDoorSettings,
}

impl Settings {
    /// Reads the settings of `service`; fails naming the first missing or
    /// invalid variable.
    pub fn from_env(service: &str) -> Result<Self, ConfigError> {
        let common = CommonSettings::from_env()?;
        let front_door = FrontDoorSettings::from_env(&common.nats.prefix)?;
        Ok(Self {
            common,
            database_url: database_url(service)?,
            front_door,
        })
    }
}
