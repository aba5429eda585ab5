//! The notifications service as a process: settings from the environment,
//! JSON logs, and a graceful shutdown on SIGTERM or Ctrl-C.

use anyhow::Context as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = &notifications::config::Settings::from_env().context("invalid configuration")?;
    common::lifecycle::run_service(
        notifications::SERVICE,
        settings.common.process,
        |lifecycle| async move { notifications::startup::build(settings, &lifecycle).await },
    )
    .await
}
