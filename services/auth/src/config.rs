//! The auth service's settings, from the environment.

use common::config::{CommonSettings, ConfigError, required};

#[derive(Debug, Clone)]
pub struct Settings {
    pub common: CommonSettings,
    /// `DATABASE_URL`: the users database.
    pub database_url: String,
}

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            common: CommonSettings::from_env()?,
            database_url: required("DATABASE_URL")?,
        })
    }
}
