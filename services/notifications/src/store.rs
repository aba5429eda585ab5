//! The service's SQL: the users, tickets and orders replicas, the mails
//! (each written once under its unique key, then marked sent or failed),
//! and the reminders due.

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use common::events::{OrderCreated, TicketSnapshot, UserCreated};

use crate::mails::Mail;

// ----- users -----

/// Adds a user to the replica; `false` when it was already there.
pub(crate) async fn insert_user(
    conn: &mut PgConnection,
    user: &UserCreated,
) -> anyhow::Result<bool> {
    let inserted = sqlx::query!(
        "INSERT INTO users (id, email, version) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING",
        user.id,
        user.email,
        user.version
    )
    .execute(conn)
    .await
    .context("adding a user to the replica")?;
    Ok(inserted.rows_affected() == 1)
}

// ----- tickets -----

/// Adds a ticket to the replica; `false` when it was already there.
pub(crate) async fn insert_ticket(pool: &PgPool, ticket: &TicketSnapshot) -> anyhow::Result<bool> {
    let inserted = sqlx::query!(
        "INSERT INTO tickets (id, title, price, seller_id, version) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (id) DO NOTHING",
        ticket.id,
        ticket.title,
        ticket.price,
        ticket.user_id,
        ticket.version
    )
    .execute(pool)
    .await
    .context("adding a ticket to the replica")?;
    Ok(inserted.rows_affected() == 1)
}

/// Applies a ticket's version v on top of v − 1; `false` when the replica
/// does not hold v − 1.
pub(crate) async fn update_ticket(pool: &PgPool, ticket: &TicketSnapshot) -> anyhow::Result<bool> {
    let updated = sqlx::query!(
        "UPDATE tickets SET title = $2, price = $3, seller_id = $4, version = $5 \
         WHERE id = $1 AND version + 1 = $5",
        ticket.id,
        ticket.title,
        ticket.price,
        ticket.user_id,
        ticket.version
    )
    .execute(pool)
    .await
    .context("updating a ticket of the replica")?;
    Ok(updated.rows_affected() == 1)
}

/// The replica's version of a ticket, if it has it.
pub(crate) async fn ticket_version(pool: &PgPool, id: Uuid) -> anyhow::Result<Option<i64>> {
    sqlx::query_scalar!("SELECT version FROM tickets WHERE id = $1", id)
        .fetch_optional(pool)
        .await
        .context("reading a ticket's version")
}

// ----- orders -----

/// An order of the replica with what its mails show, once the buyer, the
/// ticket and its seller are all known.
#[derive(Debug)]
pub(crate) struct OrderFacts {
    pub(crate) id: Uuid,
    pub(crate) status: String,
    pub(crate) paid: bool,
    pub(crate) expires_at: DateTime<Utc>,
    pub(crate) price: i64,
    pub(crate) ticket_id: Uuid,
    pub(crate) title: String,
    pub(crate) buyer_email: String,
    /// `None` while the seller is not in the users replica yet.
    pub(crate) seller_email: Option<String>,
}

/// The order `id` with its ticket and buyer, locked for the caller's
/// transaction; `None` while the order is not in the replica.
pub(crate) async fn order_facts(
    conn: &mut PgConnection,
    id: Uuid,
) -> anyhow::Result<Option<OrderFacts>> {
    sqlx::query_as!(
        OrderFacts,
        r#"SELECT o.id, o.status, o.paid, o.expires_at, o.price, o.ticket_id, t.title,
                  b.email AS buyer_email, s.email AS "seller_email?"
           FROM orders o
           JOIN tickets t ON t.id = o.ticket_id
           JOIN users b ON b.id = o.buyer_id
           LEFT JOIN users s ON s.id = t.seller_id
           WHERE o.id = $1 FOR UPDATE OF o"#,
        id
    )
    .fetch_optional(conn)
    .await
    .context("reading an order of the replica")
}

/// The buyer's e-mail and the ticket's title for a new order; `None` while
/// the buyer or the ticket is not in the replicas yet.
pub(crate) async fn buyer_and_title(
    conn: &mut PgConnection,
    order: &OrderCreated,
) -> anyhow::Result<Option<(String, String)>> {
    let row = sqlx::query!(
        "SELECT u.email, t.title FROM users u, tickets t WHERE u.id = $1 AND t.id = $2",
        order.user_id,
        order.ticket.id
    )
    .fetch_optional(conn)
    .await
    .context("looking up an order's buyer and ticket")?;
    Ok(row.map(|r| (r.email, r.title)))
}

/// Adds an order to the replica; `false` when it was already there.
pub(crate) async fn insert_order(
    conn: &mut PgConnection,
    order: &OrderCreated,
) -> anyhow::Result<bool> {
    let inserted = sqlx::query!(
        "INSERT INTO orders (id, buyer_id, ticket_id, price, status, expires_at, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING",
        order.id,
        order.user_id,
        order.ticket.id,
        order.ticket.price,
        order.status.as_str(),
        order.expires_at,
        order.version
    )
    .execute(conn)
    .await
    .context("adding an order to the replica")?;
    Ok(inserted.rows_affected() == 1)
}

/// Applies version v of a cancellation on top of v − 1; `false` when the
/// replica does not hold v − 1.
pub(crate) async fn cancel_order(
    conn: &mut PgConnection,
    id: Uuid,
    version: i64,
) -> anyhow::Result<bool> {
    let updated = sqlx::query!(
        "UPDATE orders SET status = 'cancelled', version = $2 WHERE id = $1 AND version + 1 = $2",
        id,
        version
    )
    .execute(conn)
    .await
    .context("cancelling an order of the replica")?;
    Ok(updated.rows_affected() == 1)
}

/// The replica's version of an order, if it has it.
pub(crate) async fn order_version(
    conn: &mut PgConnection,
    id: Uuid,
) -> anyhow::Result<Option<i64>> {
    sqlx::query_scalar!("SELECT version FROM orders WHERE id = $1", id)
        .fetch_optional(conn)
        .await
        .context("reading an order's version")
}

/// Records that an order was paid; `false` when it already was.
pub(crate) async fn mark_paid(conn: &mut PgConnection, id: Uuid) -> anyhow::Result<bool> {
    let updated = sqlx::query!(
        "UPDATE orders SET paid = true WHERE id = $1 AND NOT paid",
        id
    )
    .execute(conn)
    .await
    .context("marking an order paid")?;
    Ok(updated.rows_affected() == 1)
}

// ----- reminders -----

/// Schedules the reminder of an order at `due_at`.
pub(crate) async fn schedule_reminder(
    conn: &mut PgConnection,
    order_id: Uuid,
    due_at: DateTime<Utc>,
) -> anyhow::Result<()> {
    sqlx::query!(
        "INSERT INTO reminders (order_id, due_at) VALUES ($1, $2) ON CONFLICT (order_id) DO NOTHING",
        order_id,
        due_at
    )
    .execute(conn)
    .await
    .context("scheduling a reminder")?;
    Ok(())
}

/// Drops the reminder of an order (paid, cancelled or reminded).
pub(crate) async fn drop_reminder(conn: &mut PgConnection, order_id: Uuid) -> anyhow::Result<()> {
    sqlx::query!("DELETE FROM reminders WHERE order_id = $1", order_id)
        .execute(conn)
        .await
        .context("dropping a reminder")?;
    Ok(())
}

/// The orders whose reminder is due, locked for the caller's transaction
/// and skipped by any other replica's.
pub(crate) async fn due_reminders(
    conn: &mut PgConnection,
    limit: i64,
) -> anyhow::Result<Vec<Uuid>> {
    sqlx::query_scalar!(
        "SELECT order_id FROM reminders WHERE due_at <= now() ORDER BY due_at \
         LIMIT $1 FOR UPDATE SKIP LOCKED",
        limit
    )
    .fetch_all(conn)
    .await
    .context("reading due reminders")
}

// ----- mails -----

/// Writes a mail to send, under its unique key (kind, subject, recipient);
/// `false` when that mail was already written (and so is sent, or will be).
pub(crate) async fn insert_mail(conn: &mut PgConnection, mail: &Mail) -> anyhow::Result<bool> {
    let inserted = sqlx::query!(
        "INSERT INTO mails (id, kind, subject_id, recipient, subject, text_body, html_body) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT ON CONSTRAINT mails_once DO NOTHING",
        Uuid::now_v7(),
        mail.kind.as_str(),
        mail.subject_id,
        mail.recipient,
        mail.subject,
        mail.text,
        mail.html
    )
    .execute(conn)
    .await
    .context("writing a mail")?;
    Ok(inserted.rows_affected() == 1)
}

/// A mail due to be sent, as stored.
#[derive(Debug)]
pub(crate) struct PendingMail {
    pub(crate) id: Uuid,
    pub(crate) recipient: String,
    pub(crate) subject: String,
    pub(crate) text_body: String,
    pub(crate) html_body: String,
    pub(crate) attempts: i32,
}

/// The next mail due, locked for the caller's transaction (so no other
/// replica sends it meanwhile) and skipped by any other replica's.
pub(crate) async fn next_due_mail(conn: &mut PgConnection) -> anyhow::Result<Option<PendingMail>> {
    sqlx::query_as!(
        PendingMail,
        "SELECT id, recipient, subject, text_body, html_body, attempts FROM mails \
         WHERE status = 'pending' AND next_attempt_at <= now() \
         ORDER BY next_attempt_at LIMIT 1 FOR UPDATE SKIP LOCKED"
    )
    .fetch_optional(conn)
    .await
    .context("reading the next mail due")
}

/// Marks a mail sent.
pub(crate) async fn mark_sent(conn: &mut PgConnection, id: Uuid) -> anyhow::Result<()> {
    sqlx::query!(
        "UPDATE mails SET status = 'sent', attempts = attempts + 1, sent_at = now(), last_error = NULL \
         WHERE id = $1",
        id
    )
    .execute(conn)
    .await
    .context("marking a mail sent")?;
    Ok(())
}

/// Records a failed attempt: the mail is tried again after `retry_in`, or
/// never again when `retry_in` is `None` (a permanent refusal).
pub(crate) async fn mark_attempt_failed(
    conn: &mut PgConnection,
    id: Uuid,
    error: &str,
    retry_in: Option<std::time::Duration>,
) -> anyhow::Result<()> {
    let (status, delay) = match retry_in {
        Some(delay) => ("pending", delay.as_secs_f64()),
        None => ("failed", 0.0),
    };
    sqlx::query!(
        "UPDATE mails SET status = $2, attempts = attempts + 1, last_error = $3, \
                next_attempt_at = now() + make_interval(secs => $4) \
         WHERE id = $1",
        id,
        status,
        error,
        delay
    )
    .execute(conn)
    .await
    .context("recording a failed send")?;
    Ok(())
}
