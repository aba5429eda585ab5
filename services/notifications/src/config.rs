//! The notifications service's settings, from the environment: where mails
//! go (an SMTP server, or a directory for local use), who they are from, the
//! site they link to, and when reminders and retries happen.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;

use common::config::{
    CommonSettings, ConfigError, database_url, optional, optional_secret, positive_seconds,
    required,
};

/// Everything the notifications service is configured with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Port, NATS, sessions, logs and shutdown, as every service has them.
    pub common: CommonSettings,
    /// `NOTIFICATIONS_DATABASE_URL` or `DATABASE_URL`: the replicas, the
    /// mails and the reminders.
    pub database_url: String,
    /// `PUBLIC_URL`, default `http://localhost:3000`: the site the mails
    /// link to, without a trailing slash.
    pub public_url: String,
    /// `MAIL_FROM`, default `buytickets <no-reply@buytickets.dev>`: the
    /// sender of every mail.
    pub from: String,
    /// Where mails go.
    pub transport: TransportSettings,
    /// `REMINDER_BEFORE_SECONDS`, default 300: how long before an unpaid
    /// reservation runs out its reminder is sent. Must be positive.
    pub reminder_before: Duration,
    /// How often the sender and the reminder scheduler look for due work.
    pub poll_interval: Duration,
    /// The wait before retrying a mail the SMTP server did not take: it
    /// doubles per attempt from `min` up to `max`.
    pub retry: RetrySettings,
}

/// Where mails go.
#[derive(Debug, Clone)]
pub enum TransportSettings {
    /// `MAIL_DIR` set: each mail is written there as a `.eml` file (local
    /// development; no mail server needed).
    Directory(PathBuf),
    /// Otherwise an SMTP server (`SMTP_HOST` is then required).
    Smtp(SmtpSettings),
}

/// An SMTP server.
#[derive(Debug, Clone)]
pub struct SmtpSettings {
    /// `SMTP_HOST`.
    pub host: String,
    /// `SMTP_PORT`, default 587.
    pub port: u16,
    /// `SMTP_TLS`: `starttls` (default; the connection must be upgraded),
    /// `tls` (TLS from the first byte, usually port 465) or `none`
    /// (plain text, for a server on the same host or in tests).
    pub tls: SmtpTls,
    /// `SMTP_USERNAME` and `SMTP_PASSWORD`, when the server wants a login.
    pub credentials: Option<(String, SecretString)>,
    /// `SMTP_TIMEOUT_SECONDS`, default 10: the longest one SMTP command may take.
    pub timeout: Duration,
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain text.
    None,
    /// STARTTLS, required.
    StartTls,
    /// TLS from the start (SMTPS).
    Tls,
}

impl std::str::FromStr for SmtpTls {
    type Err = &'static str;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "none" => Ok(Self::None),
            "starttls" => Ok(Self::StartTls),
            "tls" => Ok(Self::Tls),
            _ => Err("expected starttls, tls or none"),
        }
    }
}

/// The backoff of mails the SMTP server did not take.
#[derive(Debug, Clone, Copy)]
pub struct RetrySettings {
    /// `MAIL_RETRY_MIN_SECONDS`, default 1.
    pub min: Duration,
    /// `MAIL_RETRY_MAX_SECONDS`, default 300.
    pub max: Duration,
}

impl RetrySettings {
    /// The wait after the `attempts`-th failed attempt (1 for the first).
    pub fn backoff(&self, attempts: i32) -> Duration {
        let exp = attempts.saturating_sub(1).clamp(0, 16) as u32;
        self.min.saturating_mul(2u32.pow(exp)).min(self.max)
    }
}

/// The site mails link to when `PUBLIC_URL` is not set (`scripts/dev up`).
pub const DEFAULT_PUBLIC_URL: &str = "http://localhost:3000";
/// The sender when `MAIL_FROM` is not set.
pub const DEFAULT_FROM: &str = "buytickets <no-reply@buytickets.dev>";

impl Settings {
    /// Reads and validates the settings; the error names the variable at fault.
    pub fn from_env() -> Result<Self, ConfigError> {
        let public_url: String = optional("PUBLIC_URL", DEFAULT_PUBLIC_URL.to_string())?;
        if !(public_url.starts_with("http://") || public_url.starts_with("https://")) {
            return Err(ConfigError::invalid(
                "PUBLIC_URL",
                &public_url,
                "expected an http:// or https:// URL",
            ));
        }
        let from: String = optional("MAIL_FROM", DEFAULT_FROM.to_string())?;
        if from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(ConfigError::invalid("MAIL_FROM", &from, "not a mailbox"));
        }
        let mail_dir: String = optional("MAIL_DIR", String::new())?;
        let transport = if mail_dir.is_empty() {
            TransportSettings::Smtp(SmtpSettings::from_env()?)
        } else {
            TransportSettings::Directory(PathBuf::from(mail_dir))
        };
        Ok(Self {
            common: CommonSettings::from_env()?,
            database_url: database_url(crate::SERVICE)?,
            public_url: public_url.trim_end_matches('/').to_string(),
            from,
            transport,
            reminder_before: positive_seconds("REMINDER_BEFORE_SECONDS", 300)?,
            poll_interval: Duration::from_secs(1),
            retry: RetrySettings {
                min: positive_seconds("MAIL_RETRY_MIN_SECONDS", 1)?,
                max: positive_seconds("MAIL_RETRY_MAX_SECONDS", 300)?,
            },
        })
    }
}

impl SmtpSettings {
    fn from_env() -> Result<Self, ConfigError> {
        let username: String = optional("SMTP_USERNAME", String::new())?;
        let credentials = match (username.is_empty(), optional_secret("SMTP_PASSWORD")?) {
            (true, None) => None,
            (false, Some(password)) => Some((username, password)),
            (true, Some(_)) => return Err(ConfigError::Missing("SMTP_USERNAME".into())),
            (false, None) => return Err(ConfigError::Missing("SMTP_PASSWORD".into())),
        };
        Ok(Self {
            host: required("SMTP_HOST")?,
            port: optional("SMTP_PORT", 587)?,
            tls: optional("SMTP_TLS", SmtpTls::StartTls)?,
            credentials,
            timeout: positive_seconds("SMTP_TIMEOUT_SECONDS", 10)?,
        })
    }
}
