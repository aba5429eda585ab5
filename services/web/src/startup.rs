//! Builds the web service: the API client, the pages and their state, and
//! a readiness check per API origin.

use common::health::Readiness;
use common::lifecycle::{Lifecycle, Service};

use crate::api::ApiClient;
use crate::config::Settings;

/// The state every page handler can extract.
#[derive(Clone)]
pub struct AppState {
    pub(crate) api: ApiClient,
    /// Set when payments go through Stripe Elements.
    pub(crate) stripe_publishable_key: Option<String>,
    pub(crate) tickets_per_page: u32,
    /// Where the development mail page reads mails from, when enabled.
    pub(crate) mail_dir: Option<std::path::PathBuf>,
}

/// Returns the pages (`/`, `/auth/...`, `/tickets/...`, `/orders/...`) and
/// the static files (`/static/...`), and degrading readiness checks that
/// the APIs answer (the web service is ready whenever it can render pages). The service starts no background task, so `_lifecycle` is
/// unused; the signature is the one every service has.
pub async fn build(settings: &Settings, _lifecycle: &Lifecycle) -> anyhow::Result<Service> {
    let api = ApiClient::new(&settings.apis, settings.api_timeout)?;
    let mut readiness = Readiness::new();
    // `/healthz`, not `/readyz`: when the web service runs in one process
    // with the APIs, their `/readyz` includes this check. Degrading only:
    // the pages render (with an error where an API is missing) without them.
    for (name, origin) in api.origins() {
        let api = api.clone();
        readiness = readiness.degrading(name, move || {
            let api = api.clone();
            let origin = origin.clone();
            async move { api.alive(&origin).await }
        });
    }
    let state = AppState {
        api,
        stripe_publishable_key: settings.stripe_publishable_key.clone(),
        tickets_per_page: settings.tickets_per_page,
        mail_dir: settings.mail_dir.clone(),
    };
    Ok(Service {
        api: crate::routes::router(state),
        readiness,
    })
}
