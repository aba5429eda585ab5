//! Settings read from the environment and validated at start-up. A bad or
//! missing variable stops the service with a message that names it.

use std::fmt::Display;
use std::str::FromStr;
use std::time::Duration;

/// A configuration problem, naming the variable at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is not set")]
    Missing(String),
    #[error("{name}={value:?} is not valid: {reason}")]
    Invalid {
        name: String,
        value: String,
        reason: String,
    },
}

impl ConfigError {
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

/// How logs are written: JSON lines when deployed, readable text locally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
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
}

/// Session token settings shared by every service that reads the cookie.
#[derive(Clone)]
pub struct SessionSettings {
    /// `JWT_KEY`: the HS256 secret, at least 32 characters.
    pub key: String,
    /// `JWT_TTL_SECONDS`, default 86400 (24 hours).
    pub ttl: Duration,
    /// `COOKIE_SECURE`: mark the cookie `Secure` (served over HTTPS). Default false.
    pub secure_cookie: bool,
}

impl std::fmt::Debug for SessionSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionSettings")
            .field("key", &"<redacted>")
            .field("ttl", &self.ttl)
            .field("secure_cookie", &self.secure_cookie)
            .finish()
    }
}

/// The settings every service has.
#[derive(Debug, Clone)]
pub struct CommonSettings {
    /// `PORT`, default 3000.
    pub port: u16,
    pub nats: NatsSettings,
    pub session: SessionSettings,
    /// `LOG_FORMAT`, default json.
    pub log_format: LogFormat,
    /// `SHUTDOWN_TIMEOUT_SECONDS`, default 20: how long a graceful shutdown
    /// may drain requests and listeners before the process exits anyway.
    pub shutdown_timeout: Duration,
}

/// The shortest accepted `JWT_KEY`, in bytes (256 bits for HS256).
pub const MIN_JWT_KEY_LEN: usize = 32;

impl CommonSettings {
    /// The part of the settings that runs the process (port, logs, drain).
    pub fn process(&self) -> crate::lifecycle::ProcessSettings {
        crate::lifecycle::ProcessSettings {
            port: self.port,
            log_format: self.log_format,
            shutdown_timeout: self.shutdown_timeout,
        }
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            port: optional("PORT", 3000)?,
            nats: nats_from_env()?,
            session: session_from_env()?,
            log_format: optional("LOG_FORMAT", LogFormat::Json)?,
            shutdown_timeout: seconds("SHUTDOWN_TIMEOUT_SECONDS", 20)?,
        })
    }
}

/// The settings of a service that owns a database and needs nothing else
/// of its own (auth, tickets).
#[derive(Debug, Clone)]
pub struct DatabaseServiceSettings {
    pub common: CommonSettings,
    /// `DATABASE_URL`: the service's own database.
    pub database_url: String,
}

impl DatabaseServiceSettings {
    /// Reads the settings; fails naming the first missing or invalid variable.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_env_with("DATABASE_URL")
    }

    /// As [`DatabaseServiceSettings::from_env`], reading the database URL
    /// from `database_variable` instead: the all-in-one local runner gives
    /// each service its own (`AUTH_DATABASE_URL`, …).
    pub fn from_env_with(database_variable: &str) -> Result<Self, ConfigError> {
        Ok(Self {
            common: CommonSettings::from_env()?,
            database_url: required(database_variable)?,
        })
    }
}

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
    Ok(NatsSettings {
        url: optional("NATS_URL", "nats://127.0.0.1:4222".to_string())?,
        prefix,
        stream_replicas,
    })
}

pub fn session_from_env() -> Result<SessionSettings, ConfigError> {
    let key = required("JWT_KEY")?;
    if key.len() < MIN_JWT_KEY_LEN {
        return Err(ConfigError::invalid(
            "JWT_KEY",
            "<redacted>",
            format!("must be at least {MIN_JWT_KEY_LEN} characters"),
        ));
    }
    let ttl = seconds("JWT_TTL_SECONDS", 24 * 60 * 60)?;
    if ttl.is_zero() {
        return Err(ConfigError::invalid(
            "JWT_TTL_SECONDS",
            "0",
            "must be positive",
        ));
    }
    Ok(SessionSettings {
        key,
        ttl,
        secure_cookie: flag("COOKIE_SECURE", false)?,
    })
}
