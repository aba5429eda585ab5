//! The web service's settings, from the environment. The service has no
//! database and no NATS connection: it only needs to know where the APIs are.

use std::time::Duration;

use common::config::{ConfigError, ProcessSettings, optional, positive_seconds};
pub use reqwest::Url;

/// Where each API is. Locally all of them are one origin (`API_URL`); in
/// Kubernetes each service can be reached directly (`AUTH_URL`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiUrls {
    /// `AUTH_URL`, else `API_URL`: serves `/api/users/...`.
    pub auth: Url,
    /// `TICKETS_URL`, else `API_URL`: serves `/api/tickets/...`.
    pub tickets: Url,
    /// `ORDERS_URL`, else `API_URL`: serves `/api/orders/...`.
    pub orders: Url,
    /// `PAYMENTS_URL`, else `API_URL`: serves `/api/payments`.
    pub payments: Url,
}

impl ApiUrls {
    /// The same origin for every API.
    pub fn all(base: Url) -> Self {
        Self {
            auth: base.clone(),
            tickets: base.clone(),
            orders: base.clone(),
            payments: base,
        }
    }

    fn from_env(default: Option<&Url>) -> Result<Self, ConfigError> {
        let shared = url_from_env("API_URL")?.or_else(|| default.cloned());
        let pick = |name: &str| -> Result<Url, ConfigError> {
            match url_from_env(name)? {
                Some(url) => Ok(url),
                None => shared
                    .clone()
                    .ok_or_else(|| ConfigError::Missing(format!("API_URL (or {name})"))),
            }
        };
        Ok(Self {
            auth: pick("AUTH_URL")?,
            tickets: pick("TICKETS_URL")?,
            orders: pick("ORDERS_URL")?,
            payments: pick("PAYMENTS_URL")?,
        })
    }
}

/// Everything the web service is configured with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Port, logs and shutdown drain, as every service has them.
    pub process: ProcessSettings,
    /// The APIs the pages are built from.
    pub apis: ApiUrls,
    /// `STRIPE_PUBLISHABLE_KEY`, optional. When set, the order page takes
    /// card details with Stripe Elements; otherwise it offers Stripe's test
    /// cards, which the payments service's simulated provider understands.
    pub stripe_publishable_key: Option<String>,
    /// `TICKETS_PER_PAGE`, default 20 (1–100): tickets on one page of the
    /// home page.
    pub tickets_per_page: u32,
    /// `API_TIMEOUT_SECONDS`, default 10: the longest one API call may take.
    pub api_timeout: Duration,
    /// `MAIL_DIR`, development only: where the notifications service writes
    /// its mails as `.eml` files. When set, `/dev/mail` lists them.
    pub mail_dir: Option<std::path::PathBuf>,
}

/// Tickets on one home page when `TICKETS_PER_PAGE` is not set.
pub const DEFAULT_TICKETS_PER_PAGE: u32 = 20;

impl Settings {
    /// Reads and validates the settings; the error names the variable at fault.
    /// `API_URL` is required unless all four per-API variables are set.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::read(None)
    }

    /// As [`Settings::from_env`], with `api_url` standing in for an unset
    /// `API_URL`: the all-in-one local runner serves the APIs on its own
    /// port and passes its own origin here.
    pub fn from_env_with_api_url(api_url: &Url) -> Result<Self, ConfigError> {
        Self::read(Some(api_url))
    }

    fn read(default_api_url: Option<&Url>) -> Result<Self, ConfigError> {
        let tickets_per_page = optional("TICKETS_PER_PAGE", DEFAULT_TICKETS_PER_PAGE)?;
        if !(1..=100).contains(&tickets_per_page) {
            return Err(ConfigError::invalid(
                "TICKETS_PER_PAGE",
                &tickets_per_page.to_string(),
                "must be from 1 to 100",
            ));
        }
        let stripe_publishable_key = optional("STRIPE_PUBLISHABLE_KEY", String::new())?;
        Ok(Self {
            process: ProcessSettings::from_env()?,
            apis: ApiUrls::from_env(default_api_url)?,
            stripe_publishable_key: publishable_key(stripe_publishable_key)?,
            tickets_per_page,
            api_timeout: positive_seconds("API_TIMEOUT_SECONDS", 10)?,
            mail_dir: Some(optional("MAIL_DIR", String::new())?)
                .filter(|dir| !dir.is_empty())
                .map(std::path::PathBuf::from),
        })
    }
}

/// An optional `http(s)://` base URL.
fn url_from_env(name: &str) -> Result<Option<Url>, ConfigError> {
    let raw: String = optional(name, String::new())?;
    if raw.is_empty() {
        return Ok(None);
    }
    parse_base_url(&raw)
        .map(Some)
        .map_err(|reason| ConfigError::invalid(name, &raw, reason))
}

/// A base URL the API paths are joined to: http or https, no query.
pub(crate) fn parse_base_url(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw.trim()).map_err(|e| e.to_string())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("expected an http:// or https:// URL".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("expected a URL without query or fragment".into());
    }
    Ok(url)
}

/// Only a publishable key belongs in a page; a secret key there would leak.
fn publishable_key(raw: String) -> Result<Option<String>, ConfigError> {
    let key = raw.trim().to_string();
    if key.is_empty() {
        return Ok(None);
    }
    if !key.starts_with("pk_") {
        return Err(ConfigError::invalid(
            "STRIPE_PUBLISHABLE_KEY",
            "<redacted>",
            "expected a publishable key (pk_...)",
        ));
    }
    Ok(Some(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_must_be_http() {
        assert!(parse_base_url("http://auth:3000").is_ok());
        assert!(parse_base_url("https://buytickets.dev/").is_ok());
        assert!(parse_base_url("ftp://auth").is_err());
        assert!(parse_base_url("auth:3000").is_err());
        assert!(parse_base_url("http://auth:3000/?x=1").is_err());
    }

    #[test]
    fn a_secret_stripe_key_is_refused_and_not_echoed() {
        let err = publishable_key("sk_test_123".into()).expect_err("secret key");
        let text = err.to_string();
        assert!(text.contains("STRIPE_PUBLISHABLE_KEY"), "{text}");
        assert!(!text.contains("sk_test_123"), "{text}");
        assert_eq!(
            publishable_key(" pk_test_1 ".into())
                .ok()
                .flatten()
                .as_deref(),
            Some("pk_test_1")
        );
        assert_eq!(publishable_key(String::new()).ok().flatten(), None);
    }
}
