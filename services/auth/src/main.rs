//! The auth service as a process: settings from the environment, JSON logs,
//! and a graceful shutdown on SIGTERM or Ctrl-C.

use anyhow::Context as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings =
        &auth::config::Settings::from_env(auth::SERVICE).context("invalid configuration")?;
    common::lifecycle::run_service(
        auth::SERVICE,
        settings.common.process,
        |lifecycle| async move { auth::startup::build(settings, &lifecycle).await },
    )
    .await
}
