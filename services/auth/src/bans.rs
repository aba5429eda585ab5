//! Bans. An admin bans or unbans a user; in one transaction the user's
//! version is bumped, the action is audited (who, when, why), a ban revokes
//! every session of the user, and `user.banned` / `user.unbanned` goes into
//! the outbox. After the commit the ban is written to the deny cache at once
//! (so every service refuses the user within a request or two); the events
//! are the backstop every authenticating service also feeds the cache from.
//! Auth rebuilds the cache from here whenever Redis has lost it.

use std::time::Duration;

use anyhow::Context as _;
use serde::Serialize;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use common::ApiError;
use common::deny::DenyCache;
use common::events::{UserBanned, UserUnbanned};
use common::outbox;
use common::session::{CurrentUser, Sessions};

/// A user's ban state, as the ban routes answer it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BanState {
    pub(crate) id: Uuid,
    pub(crate) email: String,
    pub(crate) banned: bool,
    pub(crate) reason: Option<String>,
    pub(crate) version: i64,
}

/// Bans (`ban = true`) or unbans `user` on behalf of `admin`. Banning a
/// banned user or unbanning one who is not changes nothing (and publishes
/// nothing). Unknown user: 404.
pub(crate) async fn set(
    pool: &PgPool,
    sessions: &Sessions,
    admin: &CurrentUser,
    user: Uuid,
    ban: bool,
    reason: Option<String>,
) -> Result<BanState, ApiError> {
    let mut tx = pool.begin().await.context("starting a transaction")?;
    let current = sqlx::query!(
        "SELECT email, version, banned_at, ban_reason FROM users WHERE id = $1 FOR UPDATE",
        user
    )
    .fetch_optional(&mut *tx)
    .await
    .context("looking up a user to ban")?
    .ok_or(ApiError::NotFound)?;
    if current.banned_at.is_some() == ban {
        return Ok(BanState {
            id: user,
            email: current.email,
            banned: ban,
            reason: current.ban_reason,
            version: current.version,
        });
    }
    let version = sqlx::query_scalar!(
        "UPDATE users SET version = version + 1,
                banned_at = CASE WHEN $2 THEN now() END,
                ban_reason = CASE WHEN $2 THEN $3 END
         WHERE id = $1 RETURNING version",
        user,
        ban,
        reason.clone()
    )
    .fetch_one(&mut *tx)
    .await
    .context("recording a ban")?;
    sqlx::query!(
        "INSERT INTO ban_audit (id, user_id, action, admin_id, admin_email, reason)
         VALUES ($1, $2, $3, $4, $5, $6)",
        Uuid::now_v7(),
        user,
        if ban { "ban" } else { "unban" },
        admin.id,
        admin.email,
        reason.clone()
    )
    .execute(&mut *tx)
    .await
    .context("auditing a ban")?;
    let revoked = if ban {
        let sids = crate::sessions::revoke_all(&mut tx, user, "ban").await?;
        let event = UserBanned {
            id: user,
            version,
            reason: reason.clone(),
        };
        outbox::enqueue(&mut tx, &event).await?;
        sids
    } else {
        let event = UserUnbanned {
            id: user,
            version,
            reason: reason.clone(),
        };
        outbox::enqueue(&mut tx, &event).await?;
        Vec::new()
    };
    tx.commit().await.context("committing a ban")?;
    if let Some(cache) = sessions.deny_cache()
        && let Err(e) = cache.set_ban(user, version, ban).await
    {
        // The event carries it to the cache once Redis answers again.
        tracing::error!(error = format!("{e:#}"), "could not write a ban to Redis");
    }
    crate::sessions::deny_sessions(sessions, &revoked).await;
    tracing::info!(user_id = %user, admin_id = %admin.id, ban, "ban state changed");
    Ok(BanState {
        id: user,
        email: current.email,
        banned: ban,
        reason: if ban { reason } else { None },
        version,
    })
}

/// How often auth checks that the deny cache is still complete.
pub(crate) const CACHE_CHECK_INTERVAL: Duration = Duration::from_millis(500);

/// Keeps the deny cache complete until `shutdown`: whenever its epoch key is
/// missing (at start, or after Redis restarted empty) it is rebuilt from the
/// database: every user's ban state, sessions revoked within an access
/// token's lifetime, and signed-out access tokens not yet expired.
pub(crate) async fn keep_cache_complete(
    pool: PgPool,
    cache: DenyCache,
    access_ttl: Duration,
    shutdown: CancellationToken,
) {
    loop {
        match cache.is_complete().await {
            Ok(true) => {}
            Ok(false) => match rebuild(&pool, &cache, access_ttl).await {
                Ok(()) => tracing::info!("deny cache rebuilt"),
                Err(e) => tracing::error!(error = format!("{e:#}"), "rebuilding the deny cache"),
            },
            Err(e) => tracing::warn!(error = format!("{e:#}"), "deny cache unreachable"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(CACHE_CHECK_INTERVAL) => {}
        }
    }
}

async fn rebuild(pool: &PgPool, cache: &DenyCache, access_ttl: Duration) -> anyhow::Result<()> {
    let users = sqlx::query!(
        r#"SELECT id, version, banned_at IS NOT NULL AS "banned!" FROM users WHERE version > 0"#
    )
    .fetch_all(pool)
    .await
    .context("reading ban states")?;
    for user in users {
        cache.set_ban(user.id, user.version, user.banned).await?;
    }
    let since = chrono::Utc::now() - chrono::Duration::from_std(access_ttl)?;
    let sids = sqlx::query_scalar!("SELECT id FROM sessions WHERE revoked_at > $1", since)
        .fetch_all(pool)
        .await
        .context("reading revoked sessions")?;
    cache.revoke_sessions(&sids, access_ttl).await?;
    let tokens =
        sqlx::query!("SELECT jti, expires_at FROM revoked_access_tokens WHERE expires_at > now()")
            .fetch_all(pool)
            .await
            .context("reading revoked access tokens")?;
    for token in tokens {
        cache
            .revoke_token(token.jti, token.expires_at.timestamp())
            .await?;
    }
    sqlx::query!("DELETE FROM revoked_access_tokens WHERE expires_at < now()")
        .execute(pool)
        .await
        .context("forgetting expired revoked tokens")?;
    cache.mark_complete().await
}
