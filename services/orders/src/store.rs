//! The service's SQL: the tickets replica, the orders, and the events that
//! changes to orders write to the outbox in the same transaction.

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor, PgPool};
use uuid::Uuid;

use common::error::ResultExt as _;
use common::events::{
    Event, OrderCancelled, OrderCompleted, OrderCreated, OrderStatus, OrderTicket, TicketRef,
    TicketSnapshot,
};
use common::money::Cents;
use common::outbox;

use crate::domain::{Order, Ticket};

/// The partial unique index that lets a ticket be held by one active order.
const ACTIVE_TICKET_KEY: &str = "orders_active_ticket_key";

// ----- the tickets replica -----

struct TicketRow {
    id: Uuid,
    title: String,
    price: Cents,
    user_id: Uuid,
    version: i64,
    event_date: Option<DateTime<Utc>>,
}

impl From<TicketRow> for Ticket {
    fn from(row: TicketRow) -> Self {
        Ticket {
            id: row.id,
            title: row.title,
            price: row.price,
            user_id: row.user_id,
            version: row.version,
            event_date: row.event_date,
        }
    }
}

/// Adds a ticket to the replica; `false` when it was already there.
pub(crate) async fn insert_ticket(pool: &PgPool, ticket: &TicketSnapshot) -> anyhow::Result<bool> {
    let inserted = insert_tickets(pool, std::slice::from_ref(ticket)).await?;
    Ok(!inserted.is_empty())
}

/// Adds `tickets` to the replica in one statement; answers the ids of those
/// that were not there yet (each once, even when listed twice).
pub(crate) async fn insert_tickets(
    pool: &PgPool,
    tickets: &[TicketSnapshot],
) -> anyhow::Result<Vec<Uuid>> {
    let ids: Vec<Uuid> = tickets.iter().map(|t| t.id).collect();
    let titles: Vec<String> = tickets.iter().map(|t| t.title.clone()).collect();
    let prices: Vec<i64> = tickets.iter().map(|t| t.price).collect();
    let sellers: Vec<Uuid> = tickets.iter().map(|t| t.user_id).collect();
    let versions: Vec<i64> = tickets.iter().map(|t| t.version).collect();
    let dates: Vec<Option<DateTime<Utc>>> = tickets.iter().map(|t| t.details.event_date).collect();
    sqlx::query_scalar!(
        "INSERT INTO tickets (id, title, price, user_id, version, event_date) \
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::bigint[], $4::uuid[], $5::bigint[], \
                              $6::timestamptz[]) \
         ON CONFLICT (id) DO NOTHING RETURNING id",
        &ids,
        &titles,
        &prices,
        &sellers,
        &versions,
        &dates as &[Option<DateTime<Utc>>]
    )
    .fetch_all(pool)
    .await
    .context("adding tickets to the replica")
}

/// Applies `ticket` only on top of its predecessor (version − 1), in one
/// statement, so that neither a duplicate nor an early version can overwrite
/// a newer state. `false` when no row was at the predecessor's version.
pub(crate) async fn update_ticket(
    db: impl PgExecutor<'_>,
    ticket: &TicketSnapshot,
) -> anyhow::Result<bool> {
    let updated = sqlx::query!(
        "UPDATE tickets SET title = $2, price = $3, version = $4, event_date = $5 \
         WHERE id = $1 AND version = $4::bigint - 1",
        ticket.id,
        ticket.title,
        ticket.price,
        ticket.version,
        ticket.details.event_date
    )
    .execute(db)
    .await
    .context("updating a ticket of the replica")?;
    Ok(updated.rows_affected() == 1)
}

/// The replica's version of a ticket; `None` when it has not heard of it.
pub(crate) async fn ticket_version(
    db: impl PgExecutor<'_>,
    id: Uuid,
) -> anyhow::Result<Option<i64>> {
    sqlx::query_scalar!("SELECT version FROM tickets WHERE id = $1", id)
        .fetch_optional(db)
        .await
        .context("reading a ticket's replica version")
}

pub(crate) async fn find_ticket(pool: &PgPool, id: Uuid) -> anyhow::Result<Option<Ticket>> {
    let row = sqlx::query_as!(
        TicketRow,
        r#"SELECT id, title, price AS "price: Cents", user_id, version, event_date
           FROM tickets WHERE id = $1"#,
        id
    )
    .fetch_optional(pool)
    .await
    .context("looking up a ticket")?;
    Ok(row.map(Ticket::from))
}

// ----- orders -----

/// Orders joined with their tickets, as `OrderRow`s: the shared SELECT
/// followed by `$tail` (a string literal), checked at compile time. The query
/// macros accept only literals, joined with `+`, so `concat!` cannot be used.
macro_rules! select_orders {
    ($tail:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            OrderRow,
            r#"SELECT o.id, o.user_id, o.status, o.expires_at, o.version,
                      t.id AS ticket_id, t.title AS ticket_title,
                      t.price AS "ticket_price: Cents",
                      t.user_id AS ticket_user_id, t.version AS ticket_version,
                      t.event_date AS ticket_event_date
               FROM orders o JOIN tickets t ON t.id = o.ticket_id "#
                + $tail
            $(, $arg)*
        )
    };
}

struct OrderRow {
    id: Uuid,
    user_id: Uuid,
    status: String,
    expires_at: DateTime<Utc>,
    version: i64,
    ticket_id: Uuid,
    ticket_title: String,
    ticket_price: Cents,
    ticket_user_id: Uuid,
    ticket_version: i64,
    ticket_event_date: Option<DateTime<Utc>>,
}

impl TryFrom<OrderRow> for Order {
    type Error = anyhow::Error;

    fn try_from(row: OrderRow) -> anyhow::Result<Self> {
        Ok(Order {
            id: row.id,
            user_id: row.user_id,
            status: parse_status(&row.status)?,
            expires_at: row.expires_at,
            version: row.version,
            ticket: Ticket {
                id: row.ticket_id,
                title: row.ticket_title,
                price: row.ticket_price,
                user_id: row.ticket_user_id,
                version: row.ticket_version,
                event_date: row.ticket_event_date,
            },
        })
    }
}

fn parse_status(text: &str) -> anyhow::Result<OrderStatus> {
    text.parse::<OrderStatus>().map_err(anyhow::Error::msg)
}

/// Why [`create_order`] stored nothing.
#[derive(Debug)]
pub(crate) enum NotReserved {
    /// Another active order holds the ticket.
    TicketHeld,
    /// The database failed.
    Failed(anyhow::Error),
}

impl From<anyhow::Error> for NotReserved {
    fn from(err: anyhow::Error) -> Self {
        Self::Failed(err)
    }
}

impl From<sqlx::Error> for NotReserved {
    fn from(err: sqlx::Error) -> Self {
        Self::Failed(err.into())
    }
}

/// Inserts a new order and enqueues its `order.created`, in one transaction.
/// The ticket's hold is the partial unique index: if another active order
/// holds the ticket, nothing is stored and the answer is
/// [`NotReserved::TicketHeld`], however many buyers try at once.
pub(crate) async fn create_order(pool: &PgPool, order: &Order) -> Result<(), NotReserved> {
    let mut tx = pool.begin().await.context("starting a transaction")?;
    sqlx::query!(
        "INSERT INTO orders (id, user_id, ticket_id, status, expires_at, version) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        order.id,
        order.user_id,
        order.ticket.id,
        order.status.as_str(),
        order.expires_at,
        order.version
    )
    .execute(&mut *tx)
    .await
    .on_constraint(ACTIVE_TICKET_KEY, || NotReserved::TicketHeld)?;
    let event = OrderCreated {
        id: order.id,
        version: order.version,
        status: order.status,
        user_id: order.user_id,
        expires_at: order.expires_at,
        ticket: OrderTicket {
            id: order.ticket.id,
            price: order.ticket.price.0,
        },
    };
    outbox::enqueue(&mut tx, &event).await?;
    tx.commit().await.context("committing a new order")?;
    Ok(())
}

/// The buyer's orders with their tickets, newest first.
pub(crate) async fn orders_of(pool: &PgPool, user_id: Uuid) -> anyhow::Result<Vec<Order>> {
    let rows = select_orders!(
        "WHERE o.user_id = $1 ORDER BY o.created_at DESC, o.id DESC",
        user_id
    )
    .fetch_all(pool)
    .await
    .context("listing a user's orders")?;
    rows.into_iter().map(Order::try_from).collect()
}

pub(crate) async fn find_order(pool: &PgPool, id: Uuid) -> anyhow::Result<Option<Order>> {
    let row = select_orders!("WHERE o.id = $1", id)
        .fetch_optional(pool)
        .await
        .context("looking up an order")?;
    row.map(Order::try_from).transpose()
}

/// The order holding `ticket_id` (created, awaiting payment or complete:
/// what the partial unique index allows one of), if any.
pub(crate) async fn holder_of(pool: &PgPool, ticket_id: Uuid) -> anyhow::Result<Option<Order>> {
    let row = select_orders!(
        "WHERE o.ticket_id = $1 AND o.status IN ('created', 'awaiting:payment', 'complete')",
        ticket_id
    )
    .fetch_optional(pool)
    .await
    .context("looking up the order holding a ticket")?;
    row.map(Order::try_from).transpose()
}

/// An order row locked for the rest of the caller's transaction.
#[derive(Debug)]
pub(crate) struct LockedOrder {
    pub(crate) id: Uuid,
    pub(crate) user_id: Uuid,
    pub(crate) ticket_id: Uuid,
    pub(crate) status: OrderStatus,
}

struct LockedRow {
    id: Uuid,
    user_id: Uuid,
    ticket_id: Uuid,
    status: String,
}

/// Reads an order and locks its row (`FOR UPDATE`) until the transaction
/// ends, so that a status check and the write that follows it cannot
/// interleave with another change to the same order.
pub(crate) async fn lock_order(
    conn: &mut PgConnection,
    id: Uuid,
) -> anyhow::Result<Option<LockedOrder>> {
    let row = sqlx::query_as!(
        LockedRow,
        "SELECT id, user_id, ticket_id, status FROM orders WHERE id = $1 FOR UPDATE",
        id
    )
    .fetch_optional(&mut *conn)
    .await
    .context("locking an order")?;
    row.map(LockedOrder::try_from).transpose()
}

impl TryFrom<LockedRow> for LockedOrder {
    type Error = anyhow::Error;

    fn try_from(row: LockedRow) -> anyhow::Result<Self> {
        Ok(LockedOrder {
            id: row.id,
            user_id: row.user_id,
            ticket_id: row.ticket_id,
            status: parse_status(&row.status)?,
        })
    }
}

/// Unpaid orders whose `expiresAt` is before `before`, oldest first, at most
/// `limit`, locked for the caller's transaction. Rows another transaction
/// holds are skipped (`SKIP LOCKED`), so that sweeps running on several
/// replicas at once share the work instead of queueing on each other.
pub(crate) async fn lock_overdue(
    conn: &mut PgConnection,
    before: DateTime<Utc>,
    limit: i64,
) -> anyhow::Result<Vec<LockedOrder>> {
    let rows = sqlx::query_as!(
        LockedRow,
        "SELECT id, user_id, ticket_id, status FROM orders \
         WHERE status IN ('created', 'awaiting:payment') AND expires_at < $1 \
         ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED",
        before,
        limit
    )
    .fetch_all(&mut *conn)
    .await
    .context("locking overdue orders")?;
    rows.into_iter().map(LockedOrder::try_from).collect()
}

/// Those of the orders `ids`, or of the orders holding `ticket_id`, that are
/// unpaid with their `expiresAt` not after `now`, locked for the caller's
/// transaction (waiting for another writer rather than skipping it, so that
/// the caller then reads the settled state).
pub(crate) async fn lock_overdue_among(
    conn: &mut PgConnection,
    ids: &[Uuid],
    ticket_id: Option<Uuid>,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<LockedOrder>> {
    let rows = sqlx::query_as!(
        LockedRow,
        "SELECT id, user_id, ticket_id, status FROM orders \
         WHERE (id = ANY($1) OR ticket_id = $2) \
           AND status IN ('created', 'awaiting:payment') AND expires_at <= $3 \
         ORDER BY id FOR UPDATE",
        ids,
        ticket_id,
        now
    )
    .fetch_all(&mut *conn)
    .await
    .context("locking overdue orders")?;
    rows.into_iter().map(LockedOrder::try_from).collect()
}

/// Sets a locked order's status and bumps its version; returns the new version.
pub(crate) async fn set_status(
    conn: &mut PgConnection,
    id: Uuid,
    status: OrderStatus,
) -> anyhow::Result<i64> {
    sqlx::query_scalar!(
        "UPDATE orders SET status = $2, version = version + 1 WHERE id = $1 RETURNING version",
        id,
        status.as_str()
    )
    .fetch_one(&mut *conn)
    .await
    .context("changing an order's status")
}

/// Sets a locked order's final `status` and enqueues the event `event`
/// makes of its new version and ticket, within the caller's transaction.
async fn close_order<E: Event>(
    conn: &mut PgConnection,
    order: &LockedOrder,
    status: OrderStatus,
    event: impl FnOnce(i64, TicketRef) -> E,
) -> anyhow::Result<i64> {
    let version = set_status(conn, order.id, status).await?;
    let ticket = TicketRef {
        id: order.ticket_id,
    };
    outbox::enqueue(conn, &event(version, ticket)).await?;
    Ok(version)
}

/// Cancels a locked order and enqueues its `order.cancelled`, within the
/// caller's transaction. Cancelling frees the ticket: the order leaves the
/// partial unique index.
pub(crate) async fn cancel_order(
    conn: &mut PgConnection,
    order: &LockedOrder,
) -> anyhow::Result<i64> {
    close_order(conn, order, OrderStatus::Cancelled, |version, ticket| {
        OrderCancelled {
            id: order.id,
            version,
            ticket,
        }
    })
    .await
}

/// Completes a locked, paid order and enqueues its `order.completed`, within
/// the caller's transaction; the order keeps holding its ticket for good.
pub(crate) async fn complete_order(
    conn: &mut PgConnection,
    order: &LockedOrder,
) -> anyhow::Result<i64> {
    close_order(conn, order, OrderStatus::Complete, |version, ticket| {
        OrderCompleted {
            id: order.id,
            version,
            ticket,
        }
    })
    .await
}
