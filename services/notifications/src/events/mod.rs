//! The events the notifications service consumes, one listener per subject.
//! Each keeps the replicas by the versioned-replica rule and, in the same
//! transaction, writes the mails the event calls for under their unique
//! keys; the sender sends them afterwards. So a redelivered event, or the
//! same event at two replicas, writes no second mail. Retries, acks and
//! dead letters are the shared runtime's (`common::listener`).
//!
//! - `user.created`: the users replica, and the welcome mail;
//! - `ticket.created` / `ticket.updated`: the tickets replica (title, seller);
//! - `order.created`: the orders replica, the "reservation confirmed" mail
//!   and the reminder's schedule;
//! - `order.cancelled`: the "reservation expired" mail, unless the buyer
//!   cancelled before the time was up;
//! - `payment.created`: the receipt to the buyer and "your ticket sold" to
//!   the seller;
//! - `payment.refunded`: the "refund issued" mail.

use std::marker::PhantomData;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use common::events::{
    OrderCancelled, OrderCreated, PaymentCreated, PaymentRefunded, TicketCreated, TicketUpdated,
    UserCreated,
};
use common::listener::{Delivery, Listener, Outcome};

use crate::mails::{Facts, MailKind, dollars, render};
use crate::store::{self, OrderFacts};

/// How close to its `expiresAt` a cancellation counts as the reservation
/// running out rather than the buyer cancelling: the expiration service and
/// the orders service may disagree on the time by this much.
pub const EXPIRY_SLACK: Duration = Duration::from_secs(5);

/// The links mails lead to, on the public site.
#[derive(Debug, Clone)]
pub struct Links {
    base: String,
}

impl Links {
    /// Links under `public_url` (no trailing slash).
    pub fn new(public_url: &str) -> Links {
        Links {
            base: public_url.trim_end_matches('/').to_string(),
        }
    }

    /// The home page.
    pub fn home(&self) -> String {
        format!("{}/", self.base)
    }

    /// An order's page, where it is paid.
    pub fn order(&self, id: Uuid) -> String {
        format!("{}/orders/{id}", self.base)
    }

    /// A ticket's page.
    pub fn ticket(&self, id: Uuid) -> String {
        format!("{}/tickets/{id}", self.base)
    }
}

/// What every listener of the service needs.
#[derive(Debug, Clone)]
pub struct Context {
    /// The service's database.
    pub pool: PgPool,
    /// Where the mails link to.
    pub links: Links,
    /// How long before an unpaid reservation runs out its reminder goes.
    pub reminder_before: Duration,
}

impl Context {
    async fn begin(&self) -> anyhow::Result<sqlx::Transaction<'static, sqlx::Postgres>> {
        self.pool.begin().await.context("starting a transaction")
    }
}

/// The listener of the events `E`: one per subject, all sharing a [`Context`].
pub struct Notify<E> {
    ctx: Context,
    event: PhantomData<fn() -> E>,
}

impl<E> Notify<E> {
    /// The listener of `E` on `ctx`.
    pub fn new(ctx: Context) -> Self {
        Self {
            ctx,
            event: PhantomData,
        }
    }
}

/// The facts of an order's mails.
fn order_facts(order: &OrderFacts, link: String) -> Facts {
    Facts::order(order.id, &order.title, order.price, order.expires_at, link)
}

/// When the entity or event with this id was made: order ids and outbox
/// ids are UUIDv7s, made in the transaction that wrote them.
fn written_at(event_id: Uuid) -> Option<DateTime<Utc>> {
    let (secs, nanos) = event_id.get_timestamp()?.to_unix();
    DateTime::from_timestamp(i64::try_from(secs).ok()?, nanos)
}

impl Listener for Notify<UserCreated> {
    type Event = UserCreated;

    async fn handle(&self, delivery: Delivery<UserCreated>) -> anyhow::Result<Outcome> {
        let user = delivery.event;
        let mut tx = self.ctx.begin().await?;
        if !store::insert_user(&mut tx, &user).await? {
            return Ok(Outcome::Duplicate);
        }
        let facts = Facts {
            link: self.ctx.links.home(),
            ..Facts::default()
        };
        let mail = render(MailKind::Welcome, user.id, &user.email, &facts)?;
        store::insert_mail(&mut tx, &mail).await?;
        tx.commit().await.context("committing a new user")?;
        Ok(Outcome::Applied)
    }
}

impl Listener for Notify<TicketCreated> {
    type Event = TicketCreated;

    async fn handle(&self, delivery: Delivery<TicketCreated>) -> anyhow::Result<Outcome> {
        Ok(
            match store::insert_ticket(&self.ctx.pool, &delivery.event.0).await? {
                true => Outcome::Applied,
                false => Outcome::Duplicate,
            },
        )
    }
}

impl Listener for Notify<TicketUpdated> {
    type Event = TicketUpdated;

    async fn handle(&self, delivery: Delivery<TicketUpdated>) -> anyhow::Result<Outcome> {
        let ticket = delivery.event.0;
        let applied = store::update_ticket(&self.ctx.pool, &ticket).await?;
        let stored = match applied {
            true => None,
            false => store::ticket_version(&self.ctx.pool, ticket.id).await?,
        };
        Ok(Outcome::for_version(applied, stored, ticket.version))
    }
}

impl Listener for Notify<OrderCreated> {
    type Event = OrderCreated;

    /// `NotYet` until the buyer and the ticket are in the replicas.
    async fn handle(&self, delivery: Delivery<OrderCreated>) -> anyhow::Result<Outcome> {
        let order = delivery.event;
        let mut tx = self.ctx.begin().await?;
        let Some((buyer, title)) = store::buyer_and_title(&mut tx, &order).await? else {
            return Ok(Outcome::NotYet);
        };
        if !store::insert_order(&mut tx, &order).await? {
            return Ok(Outcome::Duplicate);
        }
        // A reservation shorter than the reminder's lead gets none. One that
        // is long enough gets it even when this event comes late: the
        // scheduler still writes it as long as the order is open.
        let reserved_at = written_at(order.id).unwrap_or_else(Utc::now);
        let lead = chrono::TimeDelta::from_std(self.ctx.reminder_before)
            .context("the reminder's lead is too long")?;
        if order.expires_at - reserved_at > lead {
            let due = order.expires_at - lead;
            store::schedule_reminder(&mut tx, order.id, due).await?;
        }
        let link = self.ctx.links.order(order.id);
        let facts = Facts::order(order.id, &title, order.ticket.price, order.expires_at, link);
        let mail = render(MailKind::ReservationConfirmed, order.id, &buyer, &facts)?;
        store::insert_mail(&mut tx, &mail).await?;
        tx.commit().await.context("committing a new order")?;
        Ok(Outcome::Applied)
    }
}

impl Listener for Notify<OrderCancelled> {
    type Event = OrderCancelled;

    async fn handle(&self, delivery: Delivery<OrderCancelled>) -> anyhow::Result<Outcome> {
        let cancelled = delivery.event;
        let mut tx = self.ctx.begin().await?;
        if !store::cancel_order(&mut tx, cancelled.id, cancelled.version).await? {
            let stored = store::order_version(&mut tx, cancelled.id).await?;
            return Ok(Outcome::for_version(false, stored, cancelled.version));
        }
        store::drop_reminder(&mut tx, cancelled.id).await?;
        let order = store::order_facts(&mut tx, cancelled.id)
            .await?
            .context("a cancelled order left the replica")?;
        let at = written_at(delivery.id).unwrap_or_else(Utc::now);
        if !order.paid && at + EXPIRY_SLACK >= order.expires_at {
            let facts = order_facts(&order, self.ctx.links.ticket(order.ticket_id));
            let mail = render(
                MailKind::ReservationExpired,
                order.id,
                &order.buyer_email,
                &facts,
            )?;
            store::insert_mail(&mut tx, &mail).await?;
        }
        tx.commit().await.context("committing a cancelled order")?;
        Ok(Outcome::Applied)
    }
}

impl Listener for Notify<PaymentCreated> {
    type Event = PaymentCreated;

    /// `NotYet` until the order and the ticket's seller are in the replicas.
    async fn handle(&self, delivery: Delivery<PaymentCreated>) -> anyhow::Result<Outcome> {
        let order_id = delivery.event.order_id;
        let mut tx = self.ctx.begin().await?;
        let Some(order) = store::order_facts(&mut tx, order_id).await? else {
            return Ok(Outcome::NotYet);
        };
        let Some(seller) = order.seller_email.clone() else {
            return Ok(Outcome::NotYet);
        };
        let newly_paid = store::mark_paid(&mut tx, order_id).await?;
        store::drop_reminder(&mut tx, order_id).await?;
        let receipt = order_facts(&order, self.ctx.links.order(order_id));
        let sold = order_facts(&order, self.ctx.links.ticket(order.ticket_id));
        let mails = [
            render(
                MailKind::PaymentReceived,
                order_id,
                &order.buyer_email,
                &receipt,
            )?,
            render(MailKind::TicketSold, order_id, &seller, &sold)?,
        ];
        let mut written = false;
        for mail in &mails {
            written |= store::insert_mail(&mut tx, mail).await?;
        }
        tx.commit().await.context("committing a payment")?;
        Ok(match newly_paid || written {
            true => Outcome::Applied,
            false => Outcome::Duplicate,
        })
    }
}

impl Listener for Notify<PaymentRefunded> {
    type Event = PaymentRefunded;

    /// `NotYet` until the replica knows the order was cancelled or paid.
    async fn handle(&self, delivery: Delivery<PaymentRefunded>) -> anyhow::Result<Outcome> {
        let refund = delivery.event;
        let mut tx = self.ctx.begin().await?;
        let Some(order) = store::order_facts(&mut tx, refund.order_id).await? else {
            return Ok(Outcome::NotYet);
        };
        // A charge is refunded because its order was cancelled or already
        // paid; until the replica knows which, the mail waits for it.
        let reason = match (order.status.as_str(), order.paid) {
            ("cancelled", _) => "the payment arrived after the reservation had ended",
            (_, true) => "the order had already been paid",
            _ => return Ok(Outcome::NotYet),
        };
        let facts = Facts {
            amount: dollars(refund.amount),
            reason: reason.to_string(),
            ..order_facts(&order, self.ctx.links.order(order.id))
        };
        let mail = render(
            MailKind::RefundIssued,
            refund.payment_id,
            &order.buyer_email,
            &facts,
        )?;
        let written = store::insert_mail(&mut tx, &mail).await?;
        tx.commit().await.context("committing a refund")?;
        Ok(match written {
            true => Outcome::Applied,
            false => Outcome::Duplicate,
        })
    }
}
