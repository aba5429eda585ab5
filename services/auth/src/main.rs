//! The auth service as a process: settings from the environment, logs, and a
//! graceful shutdown on SIGTERM or Ctrl-C.

use anyhow::Context as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = &auth::config::Settings::from_env().context("invalid configuration")?;
    common::lifecycle::run_service("auth", settings.common.process(), |lifecycle| async move {
        auth::startup::build(settings, &lifecycle).await
    })
    .await
}
