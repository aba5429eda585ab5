//! The orders service's settings, from the environment.

use std::time::Duration;

use common::config::{CommonSettings, ConfigError, database_url, positive_seconds, seconds};

/// Everything the orders service is configured with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Port, NATS, sessions, logs and shutdown, as every service has them.
    pub common: CommonSettings,
    /// `ORDERS_DATABASE_URL` or `DATABASE_URL`: the orders database (orders
    /// and the tickets replica).
    pub database_url: String,
    /// `ORDER_EXPIRATION_SECONDS`, default 900: how long a new order holds
    /// its ticket before the expiration service cancels it. Must be positive.
    pub order_expiration: Duration,
    /// The backstop that cancels reservations nobody expired.
    pub sweep: SweepSettings,
}

/// The periodic sweep that cancels orders still unpaid well past their
/// `expiresAt`, should `expiration.complete` never arrive (the expiration
/// service's Redis lost its jobs, say).
#[derive(Debug, Clone, Copy)]
pub struct SweepSettings {
    /// `ORDER_EXPIRY_GRACE_SECONDS`, default 60: how long past `expiresAt`
    /// the sweep leaves an order to the expiration service before cancelling
    /// it itself. Reads never wait for it: an order read after its
    /// `expiresAt` is cancelled there and then.
    pub grace: Duration,
    /// `ORDER_SWEEP_INTERVAL_SECONDS`, default 15: the pause between sweeps.
    /// Must be positive.
    pub interval: Duration,
}

/// The sweep's grace period when `ORDER_EXPIRY_GRACE_SECONDS` is not set.
pub const DEFAULT_EXPIRY_GRACE_SECONDS: u64 = 60;
/// The pause between sweeps when `ORDER_SWEEP_INTERVAL_SECONDS` is not set.
pub const DEFAULT_SWEEP_INTERVAL_SECONDS: u64 = 15;

impl Default for SweepSettings {
    /// The documented defaults.
    fn default() -> Self {
        Self {
            grace: Duration::from_secs(DEFAULT_EXPIRY_GRACE_SECONDS),
            interval: Duration::from_secs(DEFAULT_SWEEP_INTERVAL_SECONDS),
        }
    }
}

impl SweepSettings {
    fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            grace: seconds("ORDER_EXPIRY_GRACE_SECONDS", DEFAULT_EXPIRY_GRACE_SECONDS)?,
            interval: positive_seconds(
                "ORDER_SWEEP_INTERVAL_SECONDS",
                DEFAULT_SWEEP_INTERVAL_SECONDS,
            )?,
        })
    }
}

/// The reservation length when `ORDER_EXPIRATION_SECONDS` is not set.
pub const DEFAULT_ORDER_EXPIRATION_SECONDS: u64 = 15 * 60;

impl Settings {
    /// Reads and validates the settings; the error names the variable at fault.
    pub fn from_env() -> Result<Self, ConfigError> {
        let common = CommonSettings::from_env()?;
        // It authenticates requests: it must see revocations and bans.
        common.session.require_deny_cache()?;
        Ok(Self {
            common,
            database_url: database_url(crate::SERVICE)?,
            order_expiration: positive_seconds(
                "ORDER_EXPIRATION_SECONDS",
                DEFAULT_ORDER_EXPIRATION_SECONDS,
            )?,
            sweep: SweepSettings::from_env()?,
        })
    }
}
