//! The tickets service binary: reads its settings, builds the service and
//! serves it until SIGTERM or Ctrl-C.

use anyhow::Context as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = &tickets::config::Settings::from_env().context("invalid configuration")?;
    common::lifecycle::run_service(
        "tickets",
        settings.common.process(),
        |lifecycle| async move { tickets::startup::build(settings, &lifecycle).await },
    )
    .await
}
