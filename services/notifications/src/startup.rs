//! Builds the notifications service: database (migrated at start), NATS
//! bus, the listeners of the events it consumes, the mail sender and the
//! reminder scheduler. It serves no API of its own: only the health and
//! readiness routes every service has.

use axum::Router;

use common::events::{
    OrderCancelled, OrderCreated, PaymentCreated, PaymentRefunded, TicketCreated, TicketUpdated,
    UserCreated,
};
use common::lifecycle::{Lifecycle, Service};
use common::startup::Backbone;

use crate::SERVICE;
use crate::config::Settings;
use crate::events::{Context, Links, Notify};
use crate::sender::{Sender, Transport};

/// Connects, migrates, starts the listeners, the sender and the reminder
/// scheduler on `lifecycle`, and returns the service's readiness checks.
pub async fn build(settings: &Settings, lifecycle: &Lifecycle) -> anyhow::Result<Service> {
    let mut backbone = Backbone::connect(SERVICE, &settings.common.nats, lifecycle).await?;
    let pool = backbone
        .database(&settings.database_url, &crate::MIGRATOR)
        .await?;
    let ctx = Context {
        pool: pool.clone(),
        links: Links::new(&settings.public_url),
        reminder_before: settings.reminder_before,
    };
    backbone.listen(Notify::<UserCreated>::new(ctx.clone()));
    backbone.listen(Notify::<TicketCreated>::new(ctx.clone()));
    backbone.listen(Notify::<TicketUpdated>::new(ctx.clone()));
    backbone.listen(Notify::<OrderCreated>::new(ctx.clone()));
    backbone.listen(Notify::<OrderCancelled>::new(ctx.clone()));
    backbone.listen(Notify::<PaymentCreated>::new(ctx.clone()));
    backbone.listen(Notify::<PaymentRefunded>::new(ctx.clone()));

    let sender = Sender::new(
        pool.clone(),
        Transport::new(&settings.transport)?,
        &settings.from,
        settings.retry,
        settings.poll_interval,
    )?;
    lifecycle.spawn(|shutdown| sender.run(shutdown));
    let (links, interval) = (ctx.links.clone(), settings.poll_interval);
    lifecycle.spawn(move |shutdown| crate::reminders::run(pool, links, interval, shutdown));

    Ok(backbone.into_service(Router::new()))
}
