//! The web service as a process: settings from the environment, JSON logs,
//! and a graceful shutdown on SIGTERM or Ctrl-C.

use anyhow::Context as _;
use common::lifecycle::ProcessSettings;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = &web::config::Settings::from_env().context("invalid configuration")?;
    let process = ProcessSettings {
        port: settings.port,
        log_format: settings.log_format,
        shutdown_timeout: settings.shutdown_timeout,
    };
    common::lifecycle::run_service("web", process, |lifecycle| async move {
        web::startup::build(settings, &lifecycle).await
    })
    .await
}
