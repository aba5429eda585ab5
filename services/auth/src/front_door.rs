//! The rate limits in front of sign-in and sign-up, shared by every replica
//! through Redis. Two sliding windows, each a sorted set of attempt times
//! updated by one atomic Lua script:
//!
//! - per client IP (see [`common::client_ip`]): every attempt counts,
//!   default 30 per 60 s; it bounds the password-hashing work one address
//!   can cause and how fast it can guess across accounts;
//! - per account (the email): an attempt holds a slot while its password is
//!   checked and gives it back when it succeeds, so only failures stay;
//!   default 100 per hour (OWASP ASVS V2.2.1). A slot is taken before the
//!   password is evaluated, so however many attempts arrive at once, no
//!   more than the limit are ever evaluated.
//!
//! A refused attempt gets 429 with `Retry-After`: the time until the oldest
//! attempt in the window leaves it. Nothing is locked for good: once the
//! window has moved on, the owner's correct password works again.
//!
//! When Redis cannot be reached the limits fail open: the attempt goes on
//! (scrypt still makes every guess slow), a warning is logged and
//! `auth_rate_limit_unavailable_total` counts it, so that a Redis outage
//! does not stop every user from signing in.

use std::net::IpAddr;
use std::time::Duration;

use anyhow::Context as _;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use common::ApiError;
use common::client_ip::ClientIpSettings;
use common::config::{ConfigError, optional, positive_seconds, required};

/// Attempts refused, by `scope` (`ip` or `account`) (counter).
pub const RATE_LIMITED: &str = "auth_rate_limited_total";
/// Limit checks that could not reach Redis and let the attempt through
/// (counter).
pub const RATE_LIMIT_UNAVAILABLE: &str = "auth_rate_limit_unavailable_total";

/// How long a limit check may take before it counts as Redis being down.
const REDIS_DEADLINE: Duration = Duration::from_millis(500);

/// At most `attempts` within any `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// How many attempts the window holds.
    pub attempts: u32,
    /// How far back attempts are counted.
    pub window: Duration,
}

/// The front door's settings.
#[derive(Debug, Clone)]
pub struct FrontDoorSettings {
    /// `REDIS_URL`: the Redis the replicas share their counts in.
    pub redis_url: String,
    /// The start of every key, so that deployments (and tests) sharing one
    /// Redis keep their own counts; the deployment's `NATS_PREFIX` by default.
    pub namespace: String,
    /// `RATE_LIMIT_IP_ATTEMPTS` (default 30) per
    /// `RATE_LIMIT_IP_WINDOW_SECONDS` (default 60): sign-ins and sign-ups
    /// together, per client IP.
    pub per_ip: Limit,
    /// `RATE_LIMIT_ACCOUNT_FAILURES` (default 100) per
    /// `RATE_LIMIT_ACCOUNT_WINDOW_SECONDS` (default 3600): failed sign-ins
    /// and refused sign-ups, per email.
    pub per_account: Limit,
    /// `TRUSTED_PROXIES` and `CLIENT_IP_HEADER`: how the client IP is found.
    pub client_ip: ClientIpSettings,
}

impl FrontDoorSettings {
    /// The default limits, counted in `redis_url` under `namespace`,
    /// trusting no proxy.
    pub fn new(redis_url: impl Into<String>, namespace: impl Into<String>) -> Self {
        Self {
            redis_url: redis_url.into(),
            namespace: namespace.into(),
            per_ip: Limit {
                attempts: 30,
                window: Duration::from_secs(60),
            },
            per_account: Limit {
                attempts: 100,
                window: Duration::from_secs(3600),
            },
            client_ip: ClientIpSettings::default(),
        }
    }

    /// Reads the variables above; `namespace` is the deployment's.
    pub fn from_env(namespace: &str) -> Result<Self, ConfigError> {
        let redis_url = required("REDIS_URL")?;
        if let Err(e) = redis::Client::open(redis_url.as_str()) {
            return Err(ConfigError::invalid("REDIS_URL", "<redacted>", e));
        }
        let defaults = Self::new(redis_url, namespace);
        Ok(Self {
            per_ip: limit_from_env(
                "RATE_LIMIT_IP_ATTEMPTS",
                "RATE_LIMIT_IP_WINDOW_SECONDS",
                defaults.per_ip,
            )?,
            per_account: limit_from_env(
                "RATE_LIMIT_ACCOUNT_FAILURES",
                "RATE_LIMIT_ACCOUNT_WINDOW_SECONDS",
                defaults.per_account,
            )?,
            client_ip: ClientIpSettings::from_env()?,
            ..defaults
        })
    }
}

fn limit_from_env(attempts: &str, window: &str, default: Limit) -> Result<Limit, ConfigError> {
    let count: u32 = optional(attempts, default.attempts)?;
    if count == 0 {
        return Err(ConfigError::invalid(
            attempts,
            "0",
            "must be greater than 0",
        ));
    }
    Ok(Limit {
        attempts: count,
        window: positive_seconds(window, default.window.as_secs())?,
    })
}

/// Admits one attempt into a sliding window, atomically: drops the attempts
/// older than the window and, if fewer than the limit remain, records this
/// one. Returns 0 when admitted, else the milliseconds until the oldest
/// attempt leaves the window. Redis's own clock, so replicas agree.
const ADMIT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, tonumber(oldest[2]) + window - now)
";

/// The rate limits of sign-in and sign-up. Cheap to clone.
#[derive(Clone)]
pub struct FrontDoor {
    redis: ConnectionManager,
    admit: redis::Script,
    settings: FrontDoorSettings,
}

/// An attempt let in: its account slot, given back by [`Attempt::succeeded`].
#[must_use = "a successful attempt must give its account slot back"]
pub struct Attempt {
    account_slot: Option<(String, String)>,
}

impl FrontDoor {
    /// The limits of `settings`. Nothing is connected yet: the connection is
    /// made on first use and remade after an outage.
    pub fn new(settings: &FrontDoorSettings) -> anyhow::Result<Self> {
        let client =
            redis::Client::open(settings.redis_url.as_str()).context("parsing REDIS_URL")?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_DEADLINE))
            .set_response_timeout(Some(REDIS_DEADLINE))
            .set_number_of_retries(1);
        let redis = client
            .get_connection_manager_lazy(config)
            .context("preparing the Redis connection")?;
        Ok(Self {
            redis,
            admit: redis::Script::new(ADMIT),
            settings: settings.clone(),
        })
    }

    /// How the client's IP is found, for the `ClientIp` extractor.
    pub fn client_ip(&self) -> &ClientIpSettings {
        &self.settings.client_ip
    }

    /// Lets a sign-in or sign-up for `email` from `ip` through, or refuses
    /// it with 429 and the time to wait. Call it before the password is
    /// evaluated; on success, give the slot back with [`Attempt::succeeded`].
    pub async fn admit(&self, ip: IpAddr, email: &str) -> Result<Attempt, ApiError> {
        let ns = &self.settings.namespace;
        self.take(
            "ip",
            format!("{ns}:auth:limit:ip:{ip}"),
            self.settings.per_ip,
        )
        .await?;
        let key = format!("{ns}:auth:limit:account:{email}");
        let member = self
            .take("account", key.clone(), self.settings.per_account)
            .await?;
        Ok(Attempt {
            account_slot: member.map(|member| (key, member)),
        })
    }

    /// Gives `attempt`'s account slot back: a correct password is no failure.
    pub async fn succeeded(&self, attempt: Attempt) {
        let Some((key, member)) = attempt.account_slot else {
            return;
        };
        let mut redis = self.redis.clone();
        let removed = tokio::time::timeout(
            REDIS_DEADLINE,
            redis::cmd("ZREM")
                .arg(&key)
                .arg(&member)
                .exec_async(&mut redis),
        )
        .await;
        if !matches!(removed, Ok(Ok(()))) {
            // The slot stays until the window passes: one failure too many
            // counted, never one too few.
            unavailable("giving an account slot back");
        }
    }

    /// Takes a slot of `limit` under `key`: `Some(member)` when recorded,
    /// `None` when Redis is unreachable (fail open), 429 when full.
    async fn take(
        &self,
        scope: &'static str,
        key: String,
        limit: Limit,
    ) -> Result<Option<String>, ApiError> {
        let member = uuid::Uuid::new_v4().to_string();
        let window_ms = u64::try_from(limit.window.as_millis()).unwrap_or(u64::MAX);
        let mut redis = self.redis.clone();
        let mut invocation = self.admit.key(&key);
        invocation.arg(limit.attempts).arg(window_ms).arg(&member);
        let answer =
            tokio::time::timeout(REDIS_DEADLINE, invocation.invoke_async::<u64>(&mut redis)).await;
        match answer {
            Ok(Ok(0)) => Ok(Some(member)),
            Ok(Ok(wait_ms)) => {
                metrics::counter!(RATE_LIMITED, "scope" => scope).increment(1);
                tracing::info!(scope, "sign-in attempt refused by the rate limit");
                Err(ApiError::TooManyRequests {
                    retry_after_secs: wait_ms.div_ceil(1000).max(1),
                })
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, scope, "rate limit unavailable; letting the attempt through");
                unavailable("checking a rate limit");
                Ok(None)
            }
            Err(_) => {
                tracing::warn!(scope, "rate limit timed out; letting the attempt through");
                unavailable("checking a rate limit");
                Ok(None)
            }
        }
    }
}

fn unavailable(what: &'static str) {
    metrics::counter!(RATE_LIMIT_UNAVAILABLE, "operation" => what).increment(1);
}
