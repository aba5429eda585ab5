//! The orders replica: the orders this service knows of, from the orders
//! service's `order.created` and `order.cancelled`, and the row lock under
//! which every decision about paying or refunding an order is taken.

use anyhow::Context as _;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use common::events::{OrderCreated, OrderStatus};

use crate::domain::Order;

fn parse_status(text: &str) -> anyhow::Result<OrderStatus> {
    text.parse::<OrderStatus>().map_err(anyhow::Error::msg)
}

/// Adds an order to the replica; `false` when it was already there.
pub(crate) async fn insert(pool: &PgPool, order: &OrderCreated) -> anyhow::Result<bool> {
    let inserted = sqlx::query!(
        "INSERT INTO orders (id, user_id, price, status, version, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING",
        order.id,
        order.user_id,
        order.ticket.price,
        order.status.as_str(),
        order.version,
        order.expires_at
    )
    .execute(pool)
    .await
    .context("adding an order to the replica")?;
    Ok(inserted.rows_affected() == 1)
}

/// Marks an order cancelled at `version`, if the replica holds an older
/// version. A cancellation is terminal, so nothing can come after it, and
/// applying it over any older version is safe. `false` when no row was older.
pub(crate) async fn cancel(pool: &PgPool, id: Uuid, version: i64) -> anyhow::Result<bool> {
    let updated = sqlx::query!(
        "UPDATE orders SET status = $3, version = $2 WHERE id = $1 AND version < $2",
        id,
        version,
        OrderStatus::Cancelled.as_str()
    )
    .execute(pool)
    .await
    .context("cancelling an order of the replica")?;
    Ok(updated.rows_affected() == 1)
}

/// Marks an order complete at `version`, only on top of its predecessor
/// (`version` − 1). `false` when no row was at the predecessor's version.
pub(crate) async fn complete(pool: &PgPool, id: Uuid, version: i64) -> anyhow::Result<bool> {
    let updated = sqlx::query!(
        "UPDATE orders SET status = $3, version = $2 WHERE id = $1 AND version = $2::bigint - 1",
        id,
        version,
        OrderStatus::Complete.as_str()
    )
    .execute(pool)
    .await
    .context("completing an order of the replica")?;
    Ok(updated.rows_affected() == 1)
}

/// The replica's version of an order; `None` when it has not heard of it.
pub(crate) async fn version(pool: &PgPool, id: Uuid) -> anyhow::Result<Option<i64>> {
    sqlx::query_scalar!("SELECT version FROM orders WHERE id = $1", id)
        .fetch_optional(pool)
        .await
        .context("reading an order's replica version")
}

/// An order of the replica; `None` when it has not heard of it.
pub(crate) async fn find(pool: &PgPool, id: Uuid) -> anyhow::Result<Option<Order>> {
    let row = sqlx::query!(
        "SELECT id, user_id, price, status, expires_at FROM orders WHERE id = $1",
        id
    )
    .fetch_optional(pool)
    .await
    .context("looking up an order")?;
    row.map(|r| {
        Ok(Order {
            id: r.id,
            user_id: r.user_id,
            price: r.price,
            status: parse_status(&r.status)?,
            expires_at: r.expires_at,
        })
    })
    .transpose()
}

/// An order's status, with its row locked until the transaction ends: every
/// decision about paying or refunding an order is taken under this lock, and
/// so is the replica's cancellation.
pub(crate) async fn lock(conn: &mut PgConnection, id: Uuid) -> anyhow::Result<Option<OrderStatus>> {
    let status = sqlx::query_scalar!("SELECT status FROM orders WHERE id = $1 FOR UPDATE", id)
        .fetch_optional(&mut *conn)
        .await
        .context("locking an order")?;
    status.as_deref().map(parse_status).transpose()
}
