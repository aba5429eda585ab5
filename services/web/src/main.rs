//! The web service as a process: settings from the environment, JSON logs,
//! and a graceful shutdown on SIGTERM or Ctrl-C.

use anyhow::Context as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = &web::config::Settings::from_env().context("invalid configuration")?;
    common::lifecycle::run_service(web::SERVICE, settings.process, |lifecycle| async move {
        web::startup::build(settings, &lifecycle).await
    })
    .await
}
