//! The expiration service's settings, from the environment.

use apalis_redis::IntoConnectionInfo as _;
use common::config::{CommonSettings, ConfigError, optional, required};

/// Everything the expiration service is configured with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Port, NATS, sessions, logs and shutdown, as every service has them.
    pub common: CommonSettings,
    /// `REDIS_URL`: the Redis that holds the expiration jobs.
    pub redis_url: String,
    /// `EXPIRATION_QUEUE`, default [`DEFAULT_QUEUE`]: the prefix of every
    /// Redis key of the jobs, so that several deployments (or test runs)
    /// can share one Redis. Replicas of one deployment must use the same.
    pub queue: String,
}

/// The job queue's key prefix when `EXPIRATION_QUEUE` is not set.
pub const DEFAULT_QUEUE: &str = "buytickets:expiration";

impl Settings {
    /// Reads and validates the settings; the error names the variable at fault.
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            common: CommonSettings::from_env()?,
            redis_url: redis_url("REDIS_URL", required("REDIS_URL")?)?,
            queue: queue(
                "EXPIRATION_QUEUE",
                optional("EXPIRATION_QUEUE", DEFAULT_QUEUE.to_string())?,
            )?,
        })
    }
}

/// A URL the Redis client accepts. The value is not repeated in the error:
/// it may carry a password.
fn redis_url(name: &str, url: String) -> Result<String, ConfigError> {
    match url.as_str().into_connection_info() {
        Ok(_) => Ok(url),
        Err(e) => Err(ConfigError::invalid(name, "<redacted>", e)),
    }
}

/// Key prefixes are kept to characters that need no quoting anywhere.
fn queue(name: &str, queue: String) -> Result<String, ConfigError> {
    let plain = queue
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '-' | '.'));
    if !plain {
        return Err(ConfigError::invalid(
            name,
            &queue,
            "only letters, digits, ':', '_', '-' and '.' are allowed",
        ));
    }
    Ok(queue)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redis_url_is_accepted() {
        assert_eq!(
            redis_url("REDIS_URL", "redis://127.0.0.1:6379/0".into()).ok(),
            Some("redis://127.0.0.1:6379/0".to_string())
        );
    }

    #[test]
    fn a_url_of_another_scheme_is_rejected_without_repeating_it() {
        let err = redis_url("REDIS_URL", "http://user:secret@host".into()).expect_err("http");
        let message = err.to_string();
        assert!(message.contains("REDIS_URL"), "{message}");
        assert!(!message.contains("secret"), "{message}");
    }

    #[test]
    fn a_queue_with_spaces_is_rejected_with_the_variable_named() {
        let err = queue("EXPIRATION_QUEUE", "my queue".into()).expect_err("space");
        assert!(err.to_string().contains("EXPIRATION_QUEUE"), "{err}");
    }

    #[test]
    fn the_default_queue_is_valid() {
        assert_eq!(
            queue("EXPIRATION_QUEUE", DEFAULT_QUEUE.into()).ok(),
            Some(DEFAULT_QUEUE.to_string())
        );
    }
}
