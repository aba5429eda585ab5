//! Builds the expiration service: the NATS bus, the Redis job queue, the
//! `order.created` listener that fills the queue, the worker that empties it,
//! and the readiness checks. There is no API beyond the health probes.

use axum::Router;
use common::lifecycle::{Lifecycle, Service};
use common::startup::Backbone;

use crate::SERVICE;
use crate::config::Settings;
use crate::events::OrderCreatedListener;
use crate::jobs::ExpirationJobs;

/// Starts the listener and the worker on `lifecycle` and returns the
/// service's (empty) routes and readiness checks. Neither Redis nor NATS
/// has to be up: both are connected in the background, and `/readyz` says
/// whether they answer.
pub async fn build(settings: &Settings, lifecycle: &Lifecycle) -> anyhow::Result<Service> {
    crate::worker::describe_metrics();
    let mut backbone = Backbone::connect(SERVICE, &settings.common.nats, lifecycle).await?;
    let jobs = ExpirationJobs::new(&settings.redis_url, &settings.queue)?;

    let (worker_jobs, worker_bus) = (jobs.clone(), backbone.bus().clone());
    lifecycle.spawn(|shutdown| crate::worker::run(worker_jobs, worker_bus, shutdown));
    backbone.listen(OrderCreatedListener::new(jobs.clone()));

    backbone.check("redis", move || {
        let jobs = jobs.clone();
        async move { jobs.ping().await.map_err(|e| format!("{e:#}")) }
    });
    Ok(backbone.into_service(Router::new()))
}
