//! The tickets and cancelled_orders tables. Functions that change a ticket
//! take a connection, so that the caller runs them in the transaction that
//! also enqueues the matching event.

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use common::events::EventDetails;
use common::money::Cents;
use common::outbox;

use crate::domain::{Cursor, Scope, Search, Sort, Ticket};

/// The columns of a [`Ticket`], in SQL built at run time (the search).
const COLUMNS: &str = "id, title, price, user_id, order_id, version, reserved_until, sold_at, \
     event_name, venue, city, event_date, section, seat_row, seat";

/// `query_as!` of a [`Ticket`]: `$head` (a string literal, e.g. an UPDATE)
/// followed by `RETURNING` every column, checked at compile time.
macro_rules! returning_ticket {
    ($head:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            Ticket,
            $head
                + r#" RETURNING id, title, price AS "price: Cents", user_id, order_id, version,
                      reserved_until, sold_at, event_name, venue, city, event_date, section,
                      seat_row, seat"#
            $(, $arg)*
        )
    };
}

/// `query_as!` of a [`Ticket`]: `SELECT` every column `FROM tickets`, then
/// `$tail` (a string literal), checked at compile time.
macro_rules! select_tickets {
    ($tail:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            Ticket,
            r#"SELECT id, title, price AS "price: Cents", user_id, order_id, version,
                      reserved_until, sold_at, event_name, venue, city, event_date, section,
                      seat_row, seat
               FROM tickets "#
                + $tail
            $(, $arg)*
        )
    };
}

/// Inserts `ticket`, a new listing, and writes `event` (its `ticket.created`)
/// to the outbox, in one statement: the hottest write of a flash sale costs
/// one round trip instead of a transaction's four.
pub(crate) async fn insert_listed(
    pool: &PgPool,
    ticket: &Ticket,
    event: &outbox::Row,
) -> anyhow::Result<()> {
    sqlx::query!(
        "WITH ticket AS ( \
             INSERT INTO tickets (id, title, price, user_id, event_name, venue, city, \
             event_date, section, seat_row, seat) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id) \
         INSERT INTO outbox (id, subject, payload, traceparent) \
         SELECT $12, $13, $14, $15 FROM ticket",
        ticket.id,
        ticket.title,
        ticket.price.0,
        ticket.user_id,
        ticket.event_name,
        ticket.venue,
        ticket.city,
        ticket.event_date,
        ticket.section,
        ticket.seat_row,
        ticket.seat,
        event.id,
        event.subject,
        event.payload,
        event.traceparent
    )
    .execute(pool)
    .await
    .context("listing a ticket")?;
    Ok(())
}

/// The ticket with `id`, whatever its state.
pub(crate) async fn find(pool: &PgPool, id: Uuid) -> anyhow::Result<Option<Ticket>> {
    select_tickets!("WHERE id = $1", id)
        .fetch_optional(pool)
        .await
        .context("looking up a ticket")
}

/// The ticket with `id`, locked until the caller's transaction ends, so that
/// nothing else (an edit, a reservation, a release, a sale) changes it
/// between the caller's checks and its write.
pub(crate) async fn lock(conn: &mut PgConnection, id: Uuid) -> anyhow::Result<Option<Ticket>> {
    select_tickets!("WHERE id = $1 FOR UPDATE", id)
        .fetch_optional(conn)
        .await
        .context("locking a ticket")
}

/// Up to `search.limit + 1` tickets matching `search`, in its order, after
/// its cursor: the extra row tells the caller whether a next page exists.
/// The statement holds only the filters asked for, so that each search gets
/// a plan that walks the index of its order.
///
/// A text search that matches few tickets reads them through the GIN index
/// first and sorts only them: walking the order's index would read the
/// whole table before giving up on a rare word. One that matches many keeps
/// the walk, which meets a page of matches early.
pub(crate) async fn search(
    pool: &PgPool,
    search: &Search,
    seller: Option<Uuid>,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<Ticket>> {
    let matches_first = match search.q {
        None => false,
        Some(_) => {
            let mut count = QueryBuilder::new("SELECT count(*) FROM (SELECT 1 FROM tickets WHERE ");
            push_filters(&mut count, search, seller, now);
            count.push(" LIMIT ").push_bind(FEW_MATCHES).push(") AS m");
            let found: i64 = count
                .build_query_scalar()
                .fetch_one(pool)
                .await
                .context("counting text matches")?;
            found < FEW_MATCHES
        }
    };
    let mut sql = if matches_first {
        QueryBuilder::new(format!(
            "WITH matches AS MATERIALIZED (SELECT {COLUMNS} FROM tickets WHERE "
        ))
    } else {
        QueryBuilder::new(format!("SELECT {COLUMNS} FROM tickets WHERE "))
    };
    push_filters(&mut sql, search, seller, now);
    if matches_first {
        sql.push(format!(") SELECT {COLUMNS} FROM matches WHERE TRUE"));
    }
    push_page(&mut sql, search);
    sql.build_query_as::<Ticket>()
        .fetch_all(pool)
        .await
        .context("searching tickets")
}

/// Below this many text matches, [`search`] sorts the matches itself.
const FEW_MATCHES: i64 = 1000;

/// The WHERE conditions of a search (without the cursor).
fn push_filters(
    sql: &mut QueryBuilder<Postgres>,
    search: &Search,
    seller: Option<Uuid>,
    now: DateTime<Utc>,
) {
    match (search.scope, seller) {
        (Scope::MyTickets, Some(seller)) => {
            sql.push("user_id = ").push_bind(seller);
        }
        _ => {
            // A sold ticket keeps its order, so this leaves sold ones out too.
            sql.push("order_id IS NULL AND (event_date IS NULL OR event_date > ")
                .push_bind(now)
                .push(")");
        }
    }
    if let Some(from) = search.from {
        sql.push(" AND event_date >= ").push_bind(from);
    }
    if let Some(to) = search.to {
        sql.push(" AND event_date <= ").push_bind(to);
    }
    if let Some(min) = search.min_price {
        sql.push(" AND price >= ").push_bind(min.0);
    }
    if let Some(max) = search.max_price {
        sql.push(" AND price <= ").push_bind(max.0);
    }
    if let Some(q) = &search.q {
        sql.push(" AND search @@ websearch_to_tsquery('simple', ")
            .push_bind(q.clone())
            .push(")");
    }
}

/// The cursor's keyset condition, the order and the limit of a search.
fn push_page(sql: &mut QueryBuilder<Postgres>, search: &Search) {
    const DATE_KEY: &str = "coalesce(event_date, 'infinity'::timestamptz)";
    match &search.after {
        None => {}
        Some(Cursor::Newest { id }) => {
            sql.push(" AND id < ").push_bind(*id);
        }
        Some(Cursor::Date { date, id }) => {
            sql.push(format!(" AND ({DATE_KEY}, id) > ("));
            match date {
                Some(date) => sql.push_bind(*date),
                None => sql.push("'infinity'::timestamptz"),
            };
            sql.push(", ").push_bind(*id).push(")");
        }
        Some(Cursor::Price { price, id }) => {
            sql.push(" AND (price, id) > (")
                .push_bind(*price)
                .push(", ")
                .push_bind(*id)
                .push(")");
        }
    }
    sql.push(match search.sort {
        Sort::Newest => " ORDER BY id DESC",
        Sort::Date => " ORDER BY coalesce(event_date, 'infinity'::timestamptz), id",
        Sort::Price => " ORDER BY price, id",
    });
    sql.push(" LIMIT ").push_bind(search.limit + 1);
}

/// A seller's totals: tickets by state, and what the sold ones earned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SellerTotals {
    pub(crate) listed: i64,
    pub(crate) available: i64,
    pub(crate) reserved: i64,
    pub(crate) sold: i64,
    pub(crate) earned: Cents,
}

/// The totals of every ticket `seller` listed.
pub(crate) async fn seller_totals(pool: &PgPool, seller: Uuid) -> anyhow::Result<SellerTotals> {
    let row = sqlx::query!(
        r#"SELECT count(*) AS "listed!",
                  count(*) FILTER (WHERE order_id IS NULL) AS "available!",
                  count(*) FILTER (WHERE order_id IS NOT NULL AND sold_at IS NULL) AS "reserved!",
                  count(*) FILTER (WHERE sold_at IS NOT NULL) AS "sold!",
                  coalesce(sum(price) FILTER (WHERE sold_at IS NOT NULL), 0)::bigint AS "earned!"
           FROM tickets WHERE user_id = $1"#,
        seller
    )
    .fetch_one(pool)
    .await
    .context("adding up a seller's tickets")?;
    Ok(SellerTotals {
        listed: row.listed,
        available: row.available,
        reserved: row.reserved,
        sold: row.sold,
        earned: Cents(row.earned),
    })
}

/// Sets a ticket's title, price and event details and bumps its version.
pub(crate) async fn update_details(
    conn: &mut PgConnection,
    id: Uuid,
    title: &str,
    price: Cents,
    details: &EventDetails,
) -> anyhow::Result<Ticket> {
    returning_ticket!(
        "UPDATE tickets SET title = $2, price = $3, event_name = $4, venue = $5, city = $6, \
         event_date = $7, section = $8, seat_row = $9, seat = $10, \
         version = version + 1, updated_at = now() WHERE id = $1",
        id,
        title,
        price.0,
        details.event_name,
        details.venue,
        details.city,
        details.event_date,
        details.section,
        details.row,
        details.seat
    )
    .fetch_one(conn)
    .await
    .context("updating a ticket")
}

/// Reserves a ticket for `order_id` until `until` (or frees it with `None`)
/// and bumps its version by one.
pub(crate) async fn set_order(
    conn: &mut PgConnection,
    id: Uuid,
    order_id: Option<Uuid>,
    until: Option<DateTime<Utc>>,
) -> anyhow::Result<Ticket> {
    returning_ticket!(
        "UPDATE tickets SET order_id = $2, reserved_until = $3, version = version + 1, \
         updated_at = now() WHERE id = $1",
        id,
        order_id,
        until
    )
    .fetch_one(conn)
    .await
    .context("setting a ticket's order")
}

/// Records that the order holding the ticket was paid: the ticket is sold,
/// for good, and its version bumps by one.
pub(crate) async fn mark_sold(conn: &mut PgConnection, id: Uuid) -> anyhow::Result<Ticket> {
    returning_ticket!(
        "UPDATE tickets SET sold_at = now(), reserved_until = NULL, version = version + 1, \
         updated_at = now() WHERE id = $1",
        id
    )
    .fetch_one(conn)
    .await
    .context("marking a ticket sold")
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
