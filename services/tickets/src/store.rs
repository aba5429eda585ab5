//! The tickets and cancelled_orders tables. Functions that change a ticket
//! take a connection, so that the caller runs them in the transaction that
//! also enqueues the matching event.

use anyhow::Context as _;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use common::money::Cents;

use crate::domain::{Page, Ticket, TicketInput};

/// Inserts a ticket at version 0, free, owned by `user_id`.
pub(crate) async fn insert(
    conn: &mut PgConnection,
    user_id: Uuid,
    input: &TicketInput,
) -> anyhow::Result<Ticket> {
    sqlx::query_as!(
        Ticket,
        r#"INSERT INTO tickets (id, title, price, user_id) VALUES ($1, $2, $3, $4)
           RETURNING id, title, price AS "price: Cents", user_id, order_id, version"#,
        Uuid::now_v7(),
        input.title,
        input.price.0,
        user_id
    )
    .fetch_one(conn)
    .await
    .context("inserting a ticket")
}

/// The ticket with `id`, reserved or not.
pub(crate) async fn find(pool: &PgPool, id: Uuid) -> anyhow::Result<Option<Ticket>> {
    sqlx::query_as!(
        Ticket,
        r#"SELECT id, title, price AS "price: Cents", user_id, order_id, version
           FROM tickets WHERE id = $1"#,
        id
    )
    .fetch_optional(pool)
    .await
    .context("looking up a ticket")
}

/// The ticket with `id`, locked until the caller's transaction ends, so that
/// nothing else (an edit, a reservation, a release) changes it between the
/// caller's checks and its write.
pub(crate) async fn lock(conn: &mut PgConnection, id: Uuid) -> anyhow::Result<Option<Ticket>> {
    sqlx::query_as!(
        Ticket,
        r#"SELECT id, title, price AS "price: Cents", user_id, order_id, version
           FROM tickets WHERE id = $1 FOR UPDATE"#,
        id
    )
    .fetch_optional(conn)
    .await
    .context("locking a ticket")
}

/// Up to `page.limit + 1` free tickets, newest first, older than
/// `page.before`: the extra row tells the caller whether a next page exists.
pub(crate) async fn list_unreserved(pool: &PgPool, page: Page) -> anyhow::Result<Vec<Ticket>> {
    // Two statements rather than `$1 IS NULL OR id < $1`, so that each gets
    // a plan that walks the partial index from the right place.
    let rows = match page.before {
        None => {
            sqlx::query_as!(
                Ticket,
                r#"SELECT id, title, price AS "price: Cents", user_id, order_id, version
                   FROM tickets WHERE order_id IS NULL ORDER BY id DESC LIMIT $1"#,
                page.limit + 1
            )
            .fetch_all(pool)
            .await
        }
        Some(before) => {
            sqlx::query_as!(
                Ticket,
                r#"SELECT id, title, price AS "price: Cents", user_id, order_id, version
                   FROM tickets WHERE order_id IS NULL AND id < $1 ORDER BY id DESC LIMIT $2"#,
                before,
                page.limit + 1
            )
            .fetch_all(pool)
            .await
        }
    };
    rows.context("listing tickets")
}

/// Sets a ticket's title and price and bumps its version by one.
pub(crate) async fn update_details(
    conn: &mut PgConnection,
    id: Uuid,
    input: &TicketInput,
) -> anyhow::Result<Ticket> {
    sqlx::query_as!(
        Ticket,
        r#"UPDATE tickets SET title = $2, price = $3, version = version + 1, updated_at = now()
           WHERE id = $1
           RETURNING id, title, price AS "price: Cents", user_id, order_id, version"#,
        id,
        input.title,
        input.price.0
    )
    .fetch_one(conn)
    .await
    .context("updating a ticket")
}

/// Reserves a ticket for `order_id` (or frees it with `None`) and bumps its
/// version by one.
pub(crate) async fn set_order(
    conn: &mut PgConnection,
    id: Uuid,
    order_id: Option<Uuid>,
) -> anyhow::Result<Ticket> {
    sqlx::query_as!(
        Ticket,
        r#"UPDATE tickets SET order_id = $2, version = version + 1, updated_at = now()
           WHERE id = $1
           RETURNING id, title, price AS "price: Cents", user_id, order_id, version"#,
        id,
        order_id
    )
    .fetch_one(conn)
    .await
    .context("setting a ticket's order")
}

/// Remembers that `order_id` was cancelled. Returns `false` when it already
/// was: the cancellation is a duplicate.
pub(crate) async fn remember_cancelled(
    conn: &mut PgConnection,
    order_id: Uuid,
    ticket_id: Uuid,
) -> anyhow::Result<bool> {
    let inserted = sqlx::query!(
        "INSERT INTO cancelled_orders (order_id, ticket_id) VALUES ($1, $2) \
         ON CONFLICT DO NOTHING",
        order_id,
        ticket_id
    )
    .execute(conn)
    .await
    .context("remembering a cancelled order")?;
    Ok(inserted.rows_affected() == 1)
}

/// Whether `order_id` was cancelled already.
pub(crate) async fn is_cancelled(conn: &mut PgConnection, order_id: Uuid) -> anyhow::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM cancelled_orders WHERE order_id = $1) AS "cancelled!""#,
        order_id
    )
    .fetch_one(conn)
    .await
    .context("checking whether an order was cancelled")
}
