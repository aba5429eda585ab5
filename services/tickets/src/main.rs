//! The tickets service as a process: settings from the environment, JSON logs,
//! and a graceful shutdown on SIGTERM or Ctrl-C.

use anyhow::Context as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings =
        &tickets::config::Settings::from_env(tickets::SERVICE).context("invalid configuration")?;
    common::lifecycle::run_service(
        tickets::SERVICE,
        settings.common.process,
        |lifecycle| async move { tickets::startup::build(settings, &lifecycle).await },
    )
    .await
}
