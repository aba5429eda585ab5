//! What every service's OpenAPI document shares: the error body
//! `{"errors":[{"message","field"?}]}` as one schema, the session cookie as
//! the security scheme, the error responses handlers list in their
//! `#[utoipa::path(responses(...))]`, and [`document`], which finishes a
//! service's document. The suite merges the services' documents into the one
//! served at `/api/openapi.json`.

use std::collections::BTreeMap;

use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, OpenApi, Ref, RefOr, Response, ResponseBuilder,
};
use utoipa::{IntoResponses, PartialSchema as _, ToSchema};

use crate::error::{ErrorBody, FieldError};
use crate::session::COOKIE_NAME;

/// The name of the security scheme of the session cookie; an operation that
/// needs a signed-in user says `security(("session" = []))` (the macro takes
/// only a literal), one that reads it when present `security((), ("session" = []))`.
pub const SESSION: &str = "session";

/// Finishes a service's document as every service's is finished: its title
/// and version, the error schemas its responses refer to, and the session
/// cookie's security scheme.
pub fn document(mut api: OpenApi, title: &str, description: &str) -> OpenApi {
    api.info = InfoBuilder::new()
        .title(title)
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(description))
        .build();
    let components = api.components.take().unwrap_or_default();
    let components = ComponentsBuilder::from(components)
        .schema(ErrorBody::name(), ErrorBody::schema())
        .schema(FieldError::name(), FieldError::schema())
        .security_scheme(
            SESSION,
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                COOKIE_NAME,
                "The signed session cookie that sign-up and sign-in set (HttpOnly).",
            ))),
        )
        .build();
    api.components = Some(components);
    api
}

/// One response with the error body.
fn error(description: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(ErrorBody::name())))
                .build(),
        )
        .build()
        .into()
}

fn responses(entries: &[(&str, &str)]) -> BTreeMap<String, RefOr<Response>> {
    entries
        .iter()
        .map(|(status, description)| ((*status).to_string(), error(description)))
        .collect()
}

/// The answers of an operation that reads a JSON body: 400 for bad input
/// (one entry per bad field, with `field`) or a refused business rule,
/// 413 for a body over the limit, 415 for a body that is not JSON.
pub struct JsonBodyErrors;

impl IntoResponses for JsonBodyErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        responses(&[
            (
                "400",
                "Invalid input (one entry per bad field) or a refused business rule",
            ),
            ("413", "The body is larger than 64 KiB"),
            ("415", "The body is not `application/json`"),
        ])
    }
}

/// 400: bad input or a refused business rule, for operations without a body.
pub struct BadRequest;

impl IntoResponses for BadRequest {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        responses(&[(
            "400",
            "Invalid input (one entry per bad field) or a refused business rule",
        )])
    }
}

/// 401: the operation needs the session cookie of a signed-in user.
pub struct Unauthorized;

impl IntoResponses for Unauthorized {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        responses(&[("401", "Not signed in")])
    }
}

/// 403: signed in, but the resource is someone else's.
pub struct Forbidden;

impl IntoResponses for Forbidden {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        responses(&[("403", "The resource belongs to another user")])
    }
}

/// 429: too many attempts (sign-in and sign-up rate limits), with
/// `Retry-After` in seconds.
pub struct TooManyRequests;

impl IntoResponses for TooManyRequests {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        responses(&[(
            "429",
            "Too many attempts from this address or for this account; `Retry-After` says when to try again",
        )])
    }
}

/// 404: no resource has this id (an id that is not a UUID is unknown too).
pub struct NotFound;

impl IntoResponses for NotFound {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        responses(&[("404", "Unknown id")])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finished_document_has_the_error_schema_and_the_cookie_scheme() {
        let api = document(OpenApi::default(), "test", "a test");
        let json = serde_json::to_value(&api).expect("json");
        let errors = &json["components"]["schemas"]["Errors"];
        assert_eq!(errors["required"], serde_json::json!(["errors"]));
        assert_eq!(
            errors["properties"]["errors"]["items"]["$ref"],
            "#/components/schemas/FieldError"
        );
        assert_eq!(
            json["components"]["securitySchemes"]["session"],
            serde_json::json!({"type": "apiKey", "in": "cookie", "name": "session",
                "description": "The signed session cookie that sign-up and sign-in set (HttpOnly)."})
        );
    }

    #[test]
    fn error_responses_refer_to_the_error_schema() {
        let responses = JsonBodyErrors::responses();
        assert_eq!(
            responses.keys().collect::<Vec<_>>(),
            vec!["400", "413", "415"]
        );
        let json = serde_json::to_value(&responses["415"]).expect("json");
        assert_eq!(
            json["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/Errors"
        );
    }
}
