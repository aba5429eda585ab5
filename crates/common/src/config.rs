//! Settings read from the environment and validated at start-up. A bad or
//! missing variable stops the service with a message that names it.

use std::fmt::Display;
use std::str::FromStr;
use std::time::Duration;

pub use secrecy::{ExposeSecret, SecretString};

/// A configuration problem, naming the variable at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is not set")]
    /// The variable is unset or empty.
    Missing(String),
    #[error("{name}={value:?} is not valid: {reason}")]
    /// The variable's value is not acceptable.
    Invalid {
        /// The variable.
        name: String,
        /// Its value (redacted for secrets).
        value: String,
        /// Why it is refused.
        reason: String,
    },
}

impl ConfigError {
    /// An [`ConfigError::Invalid`] for `name`.
    pub fn invalid(name: &str, value: &str, reason: impl Display) -> Self {
        Self::Invalid {
            name: name.into(),
            value: value.into(),
            reason: reason.to_string(),
        }
    }
}

/// The value of a variable that must be set (and not empty).
pub fn required(name: &str) -> Result<String, ConfigError> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => Ok(v),
        _ => Err(ConfigError::Missing(name.into())),
    }
}

/// The parsed value of a variable, or `default` when it is unset or empty.
pub fn optional<T>(name: &str, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: Display,
{
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .map_err(|e| ConfigError::invalid(name, &v, e)),
        _ => Ok(default),
    }
}

/// A boolean variable: `true`/`false`, `1`/`0`, `yes`/`no`.
pub fn flag(name: &str, default: bool) -> Result<bool, ConfigError> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => match v.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err(ConfigError::invalid(name, &v, "expected true or false")),
        },
        _ => Ok(default),
    }
}

/// A duration given in whole seconds.
pub fn seconds(name: &str, default: u64) -> Result<Duration, ConfigError> {
    optional(name, default).map(Duration::from_secs)
}

/// A duration given in whole seconds that must be greater than zero (a
/// zero reservation or timeout would end things as they start).
pub fn positive_seconds(name: &str, default: u64) -> Result<Duration, ConfigError> {
    let duration = seconds(name, default)?;
    if duration.is_zero() {
        return Err(ConfigError::invalid(name, "0", "must be greater than 0"));
    }
    Ok(duration)
}

/// A secret read from a variable that must be set. It is held as a
/// [`SecretString`], so that no `Debug` output or log line shows it.
pub fn required_secret(name: &str) -> Result<SecretString, ConfigError> {
    required(name).map(SecretString::from)
}

/// A secret read from a variable that may be unset or empty (`None` then).
pub fn optional_secret(name: &str) -> Result<Option<SecretString>, ConfigError> {
    let value: String = optional(name, String::new())?;
    Ok(Some(value)
        .filter(|v| !v.is_empty())
        .map(SecretString::from))
}

/// The URL of `service`'s own database: `<SERVICE>_DATABASE_URL` (e.g.
/// `ORDERS_DATABASE_URL`), else `DATABASE_URL`. A deployed service has only
/// `DATABASE_URL`; the all-in-one local runner sets one per service.
pub fn database_url(service: &str) -> Result<String, ConfigError> {
    let own = format!("{}_DATABASE_URL", service.to_ascii_uppercase());
    match required(&own) {
        Ok(url) => Ok(url),
        Err(_) => required("DATABASE_URL")
            .map_err(|_| ConfigError::Missing(format!("DATABASE_URL (or {own})"))),
    }
}

/// How logs are written: JSON lines when deployed, readable text locally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line, for log collectors.
    Json,
    /// Human-readable lines, for a terminal.
    Pretty,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "json" => Ok(Self::Json),
            "pretty" | "text" => Ok(Self::Pretty),
            _ => Err("expected json or pretty".into()),
        }
    }
}

/// Where NATS is and which subject/stream namespace this deployment uses.
#[derive(Debug, Clone)]
pub struct NatsSettings {
    /// `NATS_URL`, default `nats://127.0.0.1:4222`.
    pub url: String,
    /// `NATS_PREFIX`, default empty. Prefixes every subject, stream and
    /// consumer, so that several deployments (or tests) share one server.
    pub prefix: String,
    /// `NATS_STREAM_REPLICAS`, default 1: how many servers of a JetStream
    /// cluster keep a copy of each stream (3 in a 3-server cluster, so that
    /// losing a server loses no event). At most 5.
    pub stream_replicas: usize,
    /// `LISTENER_BATCH`, default 64 (1 to 1000): how many queued events of one
    /// lane a listener that applies batches (e.g. a replica's inserts) takes
    /// into one database transaction. 1 applies every event on its own.
    pub listener_batch: usize,
    /// `NATS_STREAM_MAX_BYTES`, default 128 MiB ([`crate::bus::STREAM_MAX_BYTES`]);
    /// -1 for no limit. The most one stream holds; JetStream reserves it up
    /// front, so every stream's limit times the replicas must fit the
    /// servers' `max_file_store`.
    pub stream_max_bytes: i64,
}

/// Session token settings shared by every service that reads the cookie.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    /// `JWT_KEY`: the HS256 secret, at least 32 bytes.
    pub key: SecretString,
    /// `JWT_TTL_SECONDS`, default 900 (15 minutes): the lifetime of an
    /// access token. A session outlives it through its refresh token.
    pub ttl: Duration,
    /// `REFRESH_TTL_SECONDS`, default 2592000 (30 days): how long a refresh
    /// token stays usable; every use rotates it and starts a new period.
    pub refresh_ttl: Duration,
    /// `COOKIE_SECURE`: mark the cookies `Secure` and give them the
    /// `__Host-` / `__Secure-` prefixes (served over HTTPS). Default false.
    pub secure_cookie: bool,
    /// `REDIS_URL`: the Redis holding the deny cache (revoked tokens and
    /// banned users) that every authenticating service consults. Required
    /// by auth, tickets, orders and payments (see
    /// [`SessionSettings::require_deny_cache`]).
    pub redis_url: Option<String>,
    /// `SESSION_CACHE_PREFIX`, default `buytickets:session:`: the prefix of
    /// the deny cache's Redis keys (unique per test).
    pub cache_prefix: String,
}

impl SessionSettings {
    /// Fails, naming `REDIS_URL`, when no deny cache is configured: a
    /// service that authenticates requests must see revocations and bans.
    pub fn require_deny_cache(&self) -> Result<(), ConfigError> {
        match &self.redis_url {
            Some(_) => Ok(()),
            None => Err(ConfigError::Missing("REDIS_URL".into())),
        }
    }
}

/// The deny cache's key prefix when deployed.
pub const DEFAULT_SESSION_CACHE_PREFIX: &str = "buytickets:session:";

/// The settings every service that uses NATS and sessions has.
#[derive(Debug, Clone)]
pub struct CommonSettings {
    /// Port, logs and shutdown drain.
    pub process: ProcessSettings,
    /// Where NATS is and the deployment's namespace on it.
    pub nats: NatsSettings,
    /// How session cookies are checked (and, in auth, issued).
    pub session: SessionSettings,
}

/// What a service process needs to run: where it listens, how it logs, and
/// how long its shutdown may drain.
#[derive(Debug, Clone, Copy)]
pub struct ProcessSettings {
    /// `PORT`, default 3000.
    pub port: u16,
    /// `LOG_FORMAT`, default json.
    pub log_format: LogFormat,
    /// `SHUTDOWN_TIMEOUT_SECONDS`, default 20: how long a graceful shutdown
    /// may drain requests and listeners before the process exits anyway.
    pub shutdown_timeout: Duration,
    /// `REQUEST_TIMEOUT_SECONDS`, default 30: how long a client waits for
    /// an answer before getting a 503; the request's work still finishes.
    pub request_timeout: Duration,
}

impl ProcessSettings {
    /// Reads `PORT`, `LOG_FORMAT`, `SHUTDOWN_TIMEOUT_SECONDS` and
    /// `REQUEST_TIMEOUT_SECONDS`.
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            port: optional("PORT", 3000)?,
            log_format: optional("LOG_FORMAT", LogFormat::Json)?,
            shutdown_timeout: seconds("SHUTDOWN_TIMEOUT_SECONDS", 20)?,
            request_timeout: positive_seconds("REQUEST_TIMEOUT_SECONDS", 30)?,
        })
    }
}

/// The shortest accepted `JWT_KEY`, in bytes (256 bits for HS256).
pub const MIN_JWT_KEY_LEN: usize = 32;

impl CommonSettings {
    /// Reads the process, NATS and session settings.
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            process: ProcessSettings::from_env()?,
            nats: nats_from_env()?,
            session: session_from_env()?,
        })
    }
}

/// The settings of a service that owns a database and needs nothing else
/// of its own (tickets; auth adds its admins). It authenticates requests,
/// so `REDIS_URL` (the deny cache) is required.
#[derive(Debug, Clone)]
pub struct DatabaseServiceSettings {
    /// Port, NATS, sessions, logs and shutdown, as every service has them.
    pub common: CommonSettings,
    /// The service's own database (see [`database_url`]).
    pub database_url: String,
}

impl DatabaseServiceSettings {
    /// Reads the settings of `service`; fails naming the first missing or
    /// invalid variable.
    pub fn from_env(service: &str) -> Result<Self, ConfigError> {
        let common = CommonSettings::from_env()?;
        common.session.require_deny_cache()?;
        Ok(Self {
            common,
            database_url: database_url(service)?,
        })
    }
}

/// Events of one lane a batching listener applies in one transaction, unless
/// `LISTENER_BATCH` says otherwise.
pub const DEFAULT_LISTENER_BATCH: usize = 64;

/// Reads `NATS_URL`, `NATS_PREFIX`, `NATS_STREAM_REPLICAS`,
/// `NATS_STREAM_MAX_BYTES` and `LISTENER_BATCH`.
pub fn nats_from_env() -> Result<NatsSettings, ConfigError> {
    let prefix: String = optional("NATS_PREFIX", String::new())?;
    if !prefix
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(ConfigError::invalid(
            "NATS_PREFIX",
            &prefix,
            "only letters, digits, '_' and '-' are allowed",
        ));
    }
    let stream_replicas: usize = optional("NATS_STREAM_REPLICAS", 1)?;
    if !(1..=5).contains(&stream_replicas) {
        return Err(ConfigError::invalid(
            "NATS_STREAM_REPLICAS",
            &stream_replicas.to_string(),
            "must be between 1 and 5",
        ));
    }
    let listener_batch: usize = optional("LISTENER_BATCH", DEFAULT_LISTENER_BATCH)?;
    if !(1..=1000).contains(&listener_batch) {
        return Err(ConfigError::invalid(
            "LISTENER_BATCH",
            &listener_batch.to_string(),
            "must be between 1 and 1000",
        ));
    }
    let stream_max_bytes: i64 = optional("NATS_STREAM_MAX_BYTES", crate::bus::STREAM_MAX_BYTES)?;
    if stream_max_bytes != -1 && stream_max_bytes <= 0 {
        return Err(ConfigError::invalid(
            "NATS_STREAM_MAX_BYTES",
            &stream_max_bytes.to_string(),
            "must be -1 (no limit) or greater than 0",
        ));
    }
    Ok(NatsSettings {
        url: optional("NATS_URL", "nats://127.0.0.1:4222".to_string())?,
        prefix,
        stream_replicas,
        listener_batch,
        stream_max_bytes,
    })
}

/// Reads `JWT_KEY`, `JWT_TTL_SECONDS`, `REFRESH_TTL_SECONDS`,
/// `COOKIE_SECURE`, `REDIS_URL` and `SESSION_CACHE_PREFIX`.
pub fn session_from_env() -> Result<SessionSettings, ConfigError> {
    let key = required_secret("JWT_KEY")?;
    if key.expose_secret().len() < MIN_JWT_KEY_LEN {
        return Err(ConfigError::invalid(
            "JWT_KEY",
            "<redacted>",
            format!("must be at least {MIN_JWT_KEY_LEN} bytes"),
        ));
    }
    let redis_url: String = optional("REDIS_URL", String::new())?;
    if !(redis_url.is_empty()
        || redis_url.starts_with("redis://")
        || redis_url.starts_with("rediss://"))
    {
        return Err(ConfigError::invalid(
            "REDIS_URL",
            "<redacted>",
            "expected a redis:// or rediss:// URL",
        ));
    }
    Ok(SessionSettings {
        key,
        ttl: positive_seconds("JWT_TTL_SECONDS", 15 * 60)?,
        refresh_ttl: positive_seconds("REFRESH_TTL_SECONDS", 30 * 24 * 60 * 60)?,
        secure_cookie: flag("COOKIE_SECURE", false)?,
        redis_url: Some(redis_url).filter(|u| !u.is_empty()),
        cache_prefix: optional(
            "SESSION_CACHE_PREFIX",
            DEFAULT_SESSION_CACHE_PREFIX.to_string(),
        )?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A variable no environment sets, so the default is what is read.
    const UNSET: &str = "BUYTICKETS_TEST_UNSET_SECONDS";

    #[test]
    fn a_zero_duration_is_rejected_with_the_variable_named() {
        let err = positive_seconds(UNSET, 0).expect_err("zero");
        assert!(err.to_string().contains(UNSET), "{err}");
    }

    #[test]
    fn a_positive_duration_is_kept() {
        assert_eq!(
            positive_seconds(UNSET, 1).ok(),
            Some(Duration::from_secs(1))
        );
    }

    #[test]
    fn debug_output_hides_the_session_key() {
        let settings = SessionSettings {
            key: "a-session-key-that-must-not-be-logged".into(),
            ttl: Duration::from_secs(60),
            refresh_ttl: Duration::from_secs(600),
            secure_cookie: false,
            redis_url: None,
            cache_prefix: DEFAULT_SESSION_CACHE_PREFIX.to_string(),
        };
        let text = format!("{settings:?}");
        assert!(!text.contains("must-not-be-logged"), "{text}");
    }
}
