//! The web service as a process: settings from the environment, JSON logs,
//! and a graceful shutdown on SIGTERM or Ctrl-C.

use anyhow::Context as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = &web::config::Settings::from_env().context("invalid configuration")?;
    let document = web::docs::published()?;
    common::lifecycle::run_service(web::SERVICE, settings.process, |lifecycle| async move {
        let mut service = web::startup::build(settings, &lifecycle).await?;
        // The API documentation is the web service's to serve when deployed:
        // the Gateway sends /api/openapi.json and /api/docs here.
        service.api = service.api.merge(web::docs::router(document));
        Ok(service)
    })
    .await
}
