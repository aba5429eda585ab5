//! The auth service's settings, from the environment: the common ones,
//! `DATABASE_URL` (the users database), `ADMIN_EMAILS` and the front door's
//! rate limits.

use common::config::{CommonSettings, ConfigError, database_url, optional};

pub use crate::front_door::{FrontDoorSettings, Limit};

/// Everything the auth service is configured with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Port, NATS, sessions (with the deny cache), logs and shutdown.
    pub common: CommonSettings,
    /// `AUTH_DATABASE_URL` or `DATABASE_URL`: users, sessions and bans.
    pub database_url: String,
    /// The rate limits of sign-in and sign-up, and how the client IP is found.
    pub front_door: FrontDoorSettings,
    /// `ADMIN_EMAILS`: comma-separated e-mail addresses of the users who may
    /// ban and unban (lower-cased; empty: nobody).
    pub admin_emails: Vec<String>,
}

impl Settings {
    /// Reads and validates the settings of `service`; the error names the
    /// variable at fault.
    pub fn from_env(service: &str) -> Result<Self, ConfigError> {
        let common = CommonSettings::from_env()?;
        let front_door = FrontDoorSettings::from_env(&common.nats.prefix)?;
        Ok(Self {
            common,
            database_url: database_url(service)?,
            front_door,
            admin_emails: admin_emails(&optional("ADMIN_EMAILS", String::new())?),
        })
    }
}

/// The addresses of a comma-separated list, trimmed and lower-cased.
pub fn admin_emails(list: &str) -> Vec<String> {
    list.split(',')
        .map(|e| e.trim().to_lowercase())
        .filter(|e| !e.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn admin_emails_are_trimmed_lower_cased_and_blank_entries_dropped() {
        assert_eq!(
            super::admin_emails(" Ada@Example.com, ,bob@b.co,"),
            vec!["ada@example.com", "bob@b.co"]
        );
    }
}
