//! The expiration service as a process: settings from the environment, JSON logs,
//! and a graceful shutdown on SIGTERM or Ctrl-C.

use anyhow::Context as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = &expiration::config::Settings::from_env().context("invalid configuration")?;
    common::lifecycle::run_service(
        expiration::SERVICE,
        settings.common.process,
        |lifecycle| async move { expiration::startup::build(settings, &lifecycle).await },
    )
    .await
}
