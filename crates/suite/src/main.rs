//! The `buytickets-suite` binary: every service in one process on `PORT`
//! (default 8080), as `scripts/dev up` runs it. See the library for how the
//! services are put together.

use anyhow::Context as _;
use common::config::{self, ProcessSettings};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let process = ProcessSettings {
        port: config::optional("PORT", 8080).context("invalid configuration")?,
        ..ProcessSettings::from_env().context("invalid configuration")?
    };
    // The pages call the APIs on this same port unless API_URL says otherwise.
    let own_origin: web::config::Url = format!("http://127.0.0.1:{}", process.port)
        .parse()
        .context("the suite's own URL")?;
    let settings =
        &buytickets_suite::Settings::from_env(&own_origin).context("invalid configuration")?;
    common::lifecycle::run_service("buytickets suite", process, |lifecycle| async move {
        buytickets_suite::build(settings, &lifecycle).await
    })
    .await
}
