//! Sessions as auth keeps them. Signing in starts a session (a refresh-token
//! family) and sets two cookies: a short access token and an opaque refresh
//! token, stored here only as its SHA-256. `POST /api/users/refresh` rotates
//! the refresh token on every use; a rotated token that comes back means it
//! was copied, so the whole session is revoked. Sign-out revokes the session
//! and puts the access token on the deny list until it expires.

use anyhow::Context as _;
use sha2_legacy::{Digest as _, Sha256};
use sqlx::PgPool;
use tower_cookies::Cookies;
use uuid::Uuid;

use common::ApiError;
use common::session::{CurrentUser, Sessions};

/// A new refresh token: 244 random bits (two v4 UUIDs, from the OS's
/// generator), as 64 hex digits.
fn new_refresh_token() -> String {
    format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple())
}

fn digest(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Stores `token` (its hash) as the live refresh token of session `sid`.
async fn store_refresh_token(
    tx: &mut sqlx::PgConnection,
    sessions: &Sessions,
    sid: Uuid,
    token: &str,
) -> anyhow::Result<()> {
    let expires_at = chrono::Utc::now() + chrono::Duration::from_std(sessions.refresh_ttl())?;
    sqlx::query!(
        "INSERT INTO refresh_tokens (token_hash, session_id, expires_at) VALUES ($1, $2, $3)",
        digest(token),
        sid,
        expires_at
    )
    .execute(tx)
    .await
    .context("storing a refresh token")?;
    Ok(())
}

/// Starts a session for `user` and sets its cookies.
pub(crate) async fn start(
    pool: &PgPool,
    sessions: &Sessions,
    cookies: &Cookies,
    user: &CurrentUser,
) -> Result<(), ApiError> {
    let sid = Uuid::now_v7();
    let refresh = new_refresh_token();
    let mut tx = pool.begin().await.context("starting a transaction")?;
    sqlx::query!(
        "INSERT INTO sessions (id, user_id) VALUES ($1, $2)",
        sid,
        user.id
    )
    .execute(&mut *tx)
    .await
    .context("starting a session")?;
    store_refresh_token(&mut tx, sessions, sid, &refresh).await?;
    tx.commit().await.context("committing a session")?;
    sessions.set_cookies(cookies, sessions.issue_in(user, sid)?, Some(refresh));
    Ok(())
}

/// What presenting a refresh token led to.
pub(crate) enum Refreshed {
    /// Rotated: new cookies are set.
    Rotated(CurrentUser),
    /// Unknown, expired, or of a session that has ended.
    Invalid,
    /// Already rotated once: the session is now revoked.
    Reused,
    /// The user is banned.
    Banned,
}

/// Exchanges the refresh token in `cookies` for a new one and a new access
/// token, in one transaction that locks the token and its session, so that
/// two concurrent uses of one token cannot both rotate it.
pub(crate) async fn refresh(
    pool: &PgPool,
    sessions: &Sessions,
    cookies: &Cookies,
) -> anyhow::Result<Refreshed> {
    let Some(presented) = cookies
        .get(sessions.refresh_cookie_name())
        .map(|c| c.value().to_string())
    else {
        return Ok(Refreshed::Invalid);
    };
    let mut tx = pool.begin().await.context("starting a transaction")?;
    let found = sqlx::query!(
        r#"SELECT t.session_id, t.expires_at, t.rotated_at, s.revoked_at, u.id AS user_id,
                  u.email, u.banned_at
           FROM refresh_tokens t
           JOIN sessions s ON s.id = t.session_id
           JOIN users u ON u.id = s.user_id
           WHERE t.token_hash = $1
           FOR UPDATE OF t, s"#,
        digest(&presented)
    )
    .fetch_optional(&mut *tx)
    .await
    .context("looking up a refresh token")?;
    let Some(found) = found else {
        return Ok(Refreshed::Invalid);
    };
    if found.revoked_at.is_some() || found.expires_at <= chrono::Utc::now() {
        return Ok(Refreshed::Invalid);
    }
    if found.rotated_at.is_some() {
        revoke(&mut tx, &[found.session_id], "reuse").await?;
        tx.commit().await.context("committing a revocation")?;
        deny_sessions(sessions, &[found.session_id]).await;
        tracing::warn!(user_id = %found.user_id, session_id = %found.session_id,
            "a rotated refresh token was presented again; session revoked");
        return Ok(Refreshed::Reused);
    }
    if found.banned_at.is_some() {
        return Ok(Refreshed::Banned);
    }
    let next = new_refresh_token();
    sqlx::query!(
        "UPDATE refresh_tokens SET rotated_at = now() WHERE token_hash = $1",
        digest(&presented)
    )
    .execute(&mut *tx)
    .await
    .context("rotating a refresh token")?;
    store_refresh_token(&mut tx, sessions, found.session_id, &next).await?;
    tx.commit().await.context("committing a rotation")?;
    let user = CurrentUser {
        id: found.user_id,
        email: found.email,
    };
    sessions.set_cookies(
        cookies,
        sessions.issue_in(&user, found.session_id)?,
        Some(next),
    );
    Ok(Refreshed::Rotated(user))
}

/// Revokes the sessions `ids` (those still live) for `reason`.
pub(crate) async fn revoke(
    tx: &mut sqlx::PgConnection,
    ids: &[Uuid],
    reason: &str,
) -> anyhow::Result<()> {
    sqlx::query!(
        "UPDATE sessions SET revoked_at = now(), revoked_reason = $2
         WHERE id = ANY($1) AND revoked_at IS NULL",
        ids,
        reason
    )
    .execute(tx)
    .await
    .context("revoking sessions")?;
    Ok(())
}

/// Revokes every live session of `user` for `reason`; returns their ids.
pub(crate) async fn revoke_all(
    tx: &mut sqlx::PgConnection,
    user: Uuid,
    reason: &str,
) -> anyhow::Result<Vec<Uuid>> {
    sqlx::query_scalar!(
        "UPDATE sessions SET revoked_at = now(), revoked_reason = $2
         WHERE user_id = $1 AND revoked_at IS NULL RETURNING id",
        user,
        reason
    )
    .fetch_all(tx)
    .await
    .context("revoking a user's sessions")
}

/// Puts the sessions `sids` on the deny list for an access token's
/// lifetime. A Redis failure is logged: the sessions are revoked in the
/// database, so no refresh succeeds, and their access tokens die by `exp`.
pub(crate) async fn deny_sessions(sessions: &Sessions, sids: &[Uuid]) {
    if let Some(cache) = sessions.deny_cache()
        && let Err(e) = cache.revoke_sessions(sids, sessions.ttl()).await
    {
        tracing::error!(error = format!("{e:#}"), "could not deny sessions in Redis");
    }
}

/// Ends the session of the access token in `cookies` (even an expired one):
/// revokes its refresh family and denies the token until its `exp`. Then
/// clears the cookies. Without a token of ours, only the cookies go.
pub(crate) async fn sign_out(
    pool: &PgPool,
    sessions: &Sessions,
    cookies: &Cookies,
) -> anyhow::Result<()> {
    if let Some(token) = sessions.token_ignoring_expiry(cookies) {
        let claims = &token.claims;
        let expires_at = chrono::DateTime::from_timestamp(claims.exp, 0)
            .context("an access token's exp out of range")?;
        let mut tx = pool.begin().await.context("starting a transaction")?;
        revoke(&mut tx, &[claims.sid], "signout").await?;
        sqlx::query!(
            "INSERT INTO revoked_access_tokens (jti, user_id, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT (jti) DO NOTHING",
            claims.jti,
            claims.sub,
            expires_at
        )
        .execute(&mut *tx)
        .await
        .context("recording a revoked access token")?;
        tx.commit().await.context("committing a sign-out")?;
        if let Some(cache) = sessions.deny_cache()
            && let Err(e) = cache.revoke_token(claims.jti, claims.exp).await
        {
            tracing::error!(error = format!("{e:#}"), "could not deny a token in Redis");
        }
        deny_sessions(sessions, &[claims.sid]).await;
    }
    sessions.clear_cookies(cookies);
    Ok(())
}

/// Ends every session of `user`, then clears this browser's cookies.
pub(crate) async fn sign_out_everywhere(
    pool: &PgPool,
    sessions: &Sessions,
    cookies: &Cookies,
    user: Uuid,
) -> anyhow::Result<()> {
    let mut tx = pool.begin().await.context("starting a transaction")?;
    let sids = revoke_all(&mut tx, user, "signout-everywhere").await?;
    tx.commit().await.context("committing a sign-out")?;
    deny_sessions(sessions, &sids).await;
    sign_out(pool, sessions, cookies).await
}
