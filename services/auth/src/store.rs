//! The users table.

use anyhow::Context as _;
use sqlx::PgPool;
use uuid::Uuid;

use common::ApiError;
use common::error::ResultExt as _;
use common::events::UserCreated;
use common::outbox;

#[derive(Debug)]
pub(crate) struct User {
    pub(crate) id: Uuid,
    pub(crate) email: String,
    pub(crate) password_hash: String,
    pub(crate) banned: bool,
}

/// Inserts a user and enqueues its `user.created`, in one transaction; a
/// taken email is a 400 "Email in use", decided by the unique constraint, so
/// concurrent sign-ups cannot both win.
pub(crate) async fn insert_user(
    pool: &PgPool,
    email: &str,
    password_hash: &str,
) -> Result<Uuid, ApiError> {
    let id = Uuid::now_v7();
    let mut tx = pool.begin().await.context("starting a transaction")?;
    sqlx::query!(
        "INSERT INTO users (id, email, password_hash) VALUES ($1, $2, $3)",
        id,
        email,
        password_hash
    )
    .execute(&mut *tx)
    .await
    .on_constraint("users_email_key", || {
        ApiError::field("email", "Email in use")
    })?;
    let event = UserCreated {
        id,
        email: email.to_string(),
        version: 0,
    };
    outbox::enqueue(&mut tx, &event).await?;
    tx.commit().await.context("committing a sign-up")?;
    Ok(id)
}

pub(crate) async fn email_taken(pool: &PgPool, email: &str) -> anyhow::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM users WHERE email = $1) AS "taken!""#,
        email
    )
    .fetch_one(pool)
    .await
    .context("checking whether an email is taken")
}

pub(crate) async fn find_by_email(pool: &PgPool, email: &str) -> anyhow::Result<Option<User>> {
    sqlx::query_as!(
        User,
        r#"SELECT id, email, password_hash, banned_at IS NOT NULL AS "banned!"
           FROM users WHERE email = $1"#,
        email
    )
    .fetch_optional(pool)
    .await
    .context("looking up a user by email")
}
