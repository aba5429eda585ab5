//! The payments service's settings, from the environment.

use common::config::{
    CommonSettings, ConfigError, SecretString, database_url, optional, optional_secret,
};

/// Everything the payments service is configured with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Port, NATS, sessions, logs and shutdown, as every service has them.
    pub common: CommonSettings,
    /// `PAYMENTS_DATABASE_URL` or `DATABASE_URL`: the payments database
    /// (payments and the orders replica).
    pub database_url: String,
    pub stripe: StripeSettings,
}

/// Stripe's API base when `STRIPE_API_BASE` is not set.
pub const DEFAULT_STRIPE_API_BASE: &str = "https://api.stripe.com/";

/// How the service reaches Stripe. Without a secret key it charges through
/// a simulated provider that honours Stripe's test tokens.
#[derive(Debug, Clone)]
pub struct StripeSettings {
    /// `STRIPE_SECRET_KEY`, optional: `sk_live_…` or `sk_test_…`.
    pub secret_key: Option<SecretString>,
    /// `STRIPE_API_BASE`, default `https://api.stripe.com/`; always ends with
    /// `/`. Tests point it at a local stub of Stripe's API.
    pub api_base: String,
    /// `STRIPE_CURRENCY`, default `usd`: the ISO code, lower case, that every
    /// order's price is charged in.
    pub currency: String,
    /// `STRIPE_WEBHOOK_SECRET`, optional: the `whsec_…` signing secret of the
    /// webhook endpoint. Without it the webhook route answers 503.
    pub webhook_secret: Option<SecretString>,
}

impl Settings {
    /// Reads and validates the settings; the error names the variable at fault.
    pub fn from_env() -> Result<Self, ConfigError> {
        let common = CommonSettings::from_env()?;
        // It authenticates requests: it must see revocations and bans.
        common.session.require_deny_cache()?;
        Ok(Self {
            common,
            database_url: database_url(crate::SERVICE)?,
            stripe: StripeSettings::from_env()?,
        })
    }
}

impl StripeSettings {
    /// Reads the `STRIPE_*` variables.
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            secret_key: optional_secret("STRIPE_SECRET_KEY")?,
            api_base: api_base(
                "STRIPE_API_BASE",
                &optional("STRIPE_API_BASE", DEFAULT_STRIPE_API_BASE.to_string())?,
            )?,
            currency: currency(
                "STRIPE_CURRENCY",
                &optional("STRIPE_CURRENCY", "usd".to_string())?,
            )?,
            webhook_secret: optional_secret("STRIPE_WEBHOOK_SECRET")?,
        })
    }
}

/// An `http(s)://` URL, with the trailing `/` the client appends `v1/…` to.
fn api_base(name: &str, value: &str) -> Result<String, ConfigError> {
    if !(value.starts_with("https://") || value.starts_with("http://")) {
        return Err(ConfigError::invalid(
            name,
            value,
            "expected an http:// or https:// URL",
        ));
    }
    Ok(if value.ends_with('/') {
        value.to_string()
    } else {
        format!("{value}/")
    })
}

/// A three-letter ISO currency code, as Stripe writes it (lower case).
fn currency(name: &str, value: &str) -> Result<String, ConfigError> {
    let code = value.to_ascii_lowercase();
    if code.len() != 3 || !code.chars().all(|c| c.is_ascii_lowercase()) {
        return Err(ConfigError::invalid(
            name,
            value,
            "expected a three-letter currency code such as usd",
        ));
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_base_gets_a_trailing_slash() {
        assert_eq!(
            api_base("STRIPE_API_BASE", "http://127.0.0.1:9000").ok(),
            Some("http://127.0.0.1:9000/".into())
        );
        assert_eq!(
            api_base("STRIPE_API_BASE", DEFAULT_STRIPE_API_BASE).ok(),
            Some(DEFAULT_STRIPE_API_BASE.into())
        );
    }

    #[test]
    fn an_api_base_that_is_not_a_url_is_rejected_with_the_variable_named() {
        let err = api_base("STRIPE_API_BASE", "api.stripe.com").expect_err("invalid");
        assert!(err.to_string().contains("STRIPE_API_BASE"), "{err}");
    }

    #[test]
    fn currencies_are_three_letters_in_lower_case() {
        assert_eq!(currency("STRIPE_CURRENCY", "EUR").ok(), Some("eur".into()));
        for bad in ["euro", "u$d", ""] {
            assert!(currency("STRIPE_CURRENCY", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn debug_output_hides_the_secrets() {
        let settings = StripeSettings {
            secret_key: Some("sk_test_secret".into()),
            api_base: DEFAULT_STRIPE_API_BASE.into(),
            currency: "usd".into(),
            webhook_secret: Some("whsec_secret".into()),
        };
        let text = format!("{settings:?}");
        assert!(
            !text.contains("sk_test_secret") && !text.contains("whsec_secret"),
            "{text}"
        );
    }
}
