//! The API's documentation: the OpenAPI document of every API service,
//! merged, at `/api/openapi.json`, and Swagger UI on it at `/api/docs` (its
//! assets are compiled in). Deployed, the web service serves the published
//! copy of the document, [`PUBLISHED`] (`services/web/openapi.json`); the
//! suite serves the document it merges from the services themselves, and its
//! tests fail when the published copy differs from it.

use axum::Router;
use utoipa_swagger_ui::SwaggerUi;

/// Where the merged document is served.
pub const DOCUMENT_PATH: &str = "/api/openapi.json";

/// Where Swagger UI is served.
pub const UI_PATH: &str = "/api/docs";

/// The published merged document, as committed next to this crate.
pub const PUBLISHED: &str = include_str!("../openapi.json");

/// The published document, parsed.
pub fn published() -> anyhow::Result<serde_json::Value> {
    serde_json::from_str(PUBLISHED).map_err(|e| anyhow::anyhow!("services/web/openapi.json: {e}"))
}

/// Serves `document` at [`DOCUMENT_PATH`] and Swagger UI on it at [`UI_PATH`].
pub fn router<S: Clone + Send + Sync + 'static>(document: serde_json::Value) -> Router<S> {
    SwaggerUi::new(UI_PATH)
        .external_url_unchecked(DOCUMENT_PATH, document)
        .into()
}
