//! The deny cache: what makes a validly signed session token no longer count.
//! It lives in Redis, shared by every replica of every service that
//! authenticates requests, and holds
//!
//! - revoked access tokens (`jti:<jti>`, until the token's `exp`): a signed-out token;
//! - revoked sessions (`sid:<sid>`, for an access token's lifetime): every
//!   access token of a refresh family that was signed out, revoked everywhere,
//!   or caught reusing a rotated refresh token;
//! - users' ban state (`user:<id>`, a hash of `version` and `banned`), written
//!   by auth when it bans or unbans and by every service's listener of
//!   `user.banned` / `user.unbanned`, newer versions only;
//! - `epoch`: present while the cache is complete. Auth rebuilds the cache
//!   from its database whenever the key is missing (Redis restarted empty).
//!
//! When Redis cannot answer within [`CHECK_TIMEOUT`] a check **fails open**:
//! the token's signature and expiry still hold, the failure is logged and
//! counted (`session_deny_cache_errors_total`), and a revoked token lives at
//! most until its `exp` (15 minutes by default) during the outage. Failing
//! closed would sign every user out of every service whenever Redis blinks.

use std::marker::PhantomData;
use std::time::Duration;

use anyhow::Context as _;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use uuid::Uuid;

use crate::events::{UserBanned, UserUnbanned};
use crate::listener::{Delivery, Listener, Outcome};

/// How long a request waits for the deny cache before it fails open.
pub const CHECK_TIMEOUT: Duration = Duration::from_millis(250);

/// The counter of deny-cache checks that failed (and were let through).
pub const DENY_CACHE_ERRORS: &str = "session_deny_cache_errors_total";

/// Applies a user's ban state only when its version is newer than the one
/// stored, so that replayed or reordered events never undo a later change.
const SET_BAN: &str = r"
local stored = redis.call('HGET', KEYS[1], 'version')
if stored and tonumber(stored) >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'version', ARGV[1], 'banned', ARGV[2])
return 1";

/// What the deny cache says about a validly signed token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Nothing against it.
    Good,
    /// The token or its session was revoked: it is anonymous.
    Revoked,
    /// Its user is banned.
    Banned,
}

/// A connection to the deny cache. Cheap to clone.
#[derive(Clone)]
pub struct DenyCache {
    conn: ConnectionManager,
    prefix: String,
}

impl DenyCache {
    /// The cache whose keys start with `prefix` in the Redis at `url`. Nothing
    /// is connected yet: the connection is made on first use and remade after
    /// an outage, so a service starts while Redis is down.
    pub fn new(url: &str, prefix: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url).context("parsing REDIS_URL")?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CHECK_TIMEOUT))
            .set_response_timeout(Some(CHECK_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        let conn = client
            .get_connection_manager_lazy(config)
            .context("preparing the deny cache's Redis connection")?;
        Ok(Self {
            conn,
            prefix: prefix.to_string(),
        })
    }

    fn key(&self, kind: &str, id: impl std::fmt::Display) -> String {
        format!("{}{kind}:{id}", self.prefix)
    }

    /// Whether the token `jti` of session `sid` of `user` still counts.
    /// Errors (Redis down, slow) are the caller's to fail open on.
    pub async fn standing(&self, user: Uuid, jti: Uuid, sid: Uuid) -> anyhow::Result<Standing> {
        let mut conn = self.conn.clone();
        let mut pipe = redis::pipe();
        pipe.cmd("EXISTS")
            .arg(self.key("jti", jti))
            .cmd("EXISTS")
            .arg(self.key("sid", sid))
            .cmd("HGET")
            .arg(self.key("user", user))
            .arg("banned");
        let query = pipe.query_async::<(bool, bool, Option<String>)>(&mut conn);
        let (jti_revoked, sid_revoked, banned) = tokio::time::timeout(CHECK_TIMEOUT, query)
            .await
            .context("the deny cache did not answer in time")?
            .context("reading the deny cache")?;
        Ok(if banned.as_deref() == Some("1") {
            Standing::Banned
        } else if jti_revoked || sid_revoked {
            Standing::Revoked
        } else {
            Standing::Good
        })
    }

    /// Denies the access token `jti` until `expires_at` (seconds since the
    /// epoch; the token is dead by itself afterwards).
    pub async fn revoke_token(&self, jti: Uuid, expires_at: i64) -> anyhow::Result<()> {
        let mut conn = self.conn.clone();
        redis::cmd("SET")
            .arg(self.key("jti", jti))
            .arg(1)
            .arg("EXAT")
            .arg(expires_at.max(chrono::Utc::now().timestamp() + 1))
            .query_async::<()>(&mut conn)
            .await
            .context("denying an access token")
    }

    /// Denies every access token of the sessions `sids` for `lifetime` (an
    /// access token's longest life).
    pub async fn revoke_sessions(&self, sids: &[Uuid], lifetime: Duration) -> anyhow::Result<()> {
        if sids.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for sid in sids {
            pipe.cmd("SET")
                .arg(self.key("sid", sid))
                .arg(1)
                .arg("EX")
                .arg(lifetime.as_secs().max(1))
                .ignore();
        }
        let mut conn = self.conn.clone();
        pipe.query_async::<()>(&mut conn)
            .await
            .context("denying sessions")
    }

    /// Records that `user` is (or is no longer) banned as of the user's
    /// `version`; an older version than the one stored changes nothing.
    /// Returns whether it changed the cache.
    pub async fn set_ban(&self, user: Uuid, version: i64, banned: bool) -> anyhow::Result<bool> {
        let mut conn = self.conn.clone();
        let changed: i64 = redis::cmd("EVAL")
            .arg(SET_BAN)
            .arg(1)
            .arg(self.key("user", user))
            .arg(version)
            .arg(if banned { "1" } else { "0" })
            .query_async(&mut conn)
            .await
            .context("recording a ban in the deny cache")?;
        Ok(changed == 1)
    }

    /// Whether the cache is complete: its `epoch` key is present. A Redis that
    /// restarted empty has lost it.
    pub async fn is_complete(&self) -> anyhow::Result<bool> {
        let mut conn = self.conn.clone();
        redis::cmd("EXISTS")
            .arg(format!("{}epoch", self.prefix))
            .query_async(&mut conn)
            .await
            .context("reading the deny cache's epoch")
    }

    /// Marks the cache complete (after it was rebuilt).
    pub async fn mark_complete(&self) -> anyhow::Result<()> {
        let mut conn = self.conn.clone();
        redis::cmd("SET")
            .arg(format!("{}epoch", self.prefix))
            .arg(chrono::Utc::now().timestamp())
            .query_async::<()>(&mut conn)
            .await
            .context("marking the deny cache complete")
    }

    /// Whether Redis answers (for readiness).
    pub async fn ping(&self) -> Result<(), String> {
        let mut conn = self.conn.clone();
        let cmd = redis::cmd("PING");
        let ping = cmd.query_async::<String>(&mut conn);
        match tokio::time::timeout(Duration::from_secs(1), ping).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("no answer within 1 s".into()),
        }
    }
}

/// Feeds the deny cache from `user.banned` or `user.unbanned` (`E`). Every
/// authenticating service registers both (see
/// [`Backbone::follow_bans`](crate::startup::Backbone::follow_bans)), so a ban
/// reaches the cache even when auth could not write it itself.
pub struct BanListener<E> {
    cache: DenyCache,
    event: PhantomData<fn() -> E>,
}

impl<E> BanListener<E> {
    /// A listener writing into `cache`.
    pub fn new(cache: DenyCache) -> Self {
        Self {
            cache,
            event: PhantomData,
        }
    }
}

impl Listener for BanListener<UserBanned> {
    type Event = UserBanned;

    async fn handle(&self, delivery: Delivery<UserBanned>) -> anyhow::Result<Outcome> {
        let event = delivery.event;
        Ok(
            match self.cache.set_ban(event.id, event.version, true).await? {
                true => Outcome::Applied,
                false => Outcome::Duplicate,
            },
        )
    }
}

impl Listener for BanListener<UserUnbanned> {
    type Event = UserUnbanned;

    async fn handle(&self, delivery: Delivery<UserUnbanned>) -> anyhow::Result<Outcome> {
        let event = delivery.event;
        Ok(
            match self.cache.set_ban(event.id, event.version, false).await? {
                true => Outcome::Applied,
                false => Outcome::Duplicate,
            },
        )
    }
}
