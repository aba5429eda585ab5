//! The payments service as a process: settings from the environment, JSON logs,
//! and a graceful shutdown on SIGTERM or Ctrl-C.

use anyhow::Context as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = &payments::config::Settings::from_env().context("invalid configuration")?;
    common::lifecycle::run_service(
        payments::SERVICE,
        settings.common.process,
        |lifecycle| async move { payments::startup::build(settings, &lifecycle).await },
    )
    .await
}
