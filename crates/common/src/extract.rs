//! Request extractors whose rejections are [`ApiError`]s, so that a malformed
//! body, query or id gets the same error body as every other failure.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::error::{ApiError, FieldError};

/// A JSON body (request) or JSON response. Rejections: 415 for a missing or
/// non-JSON content type, 413 for a body over the limit, 400 for malformed
/// JSON, and 400 with a `field` for a missing or mistyped field.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !has_json_content_type(&req) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::BadRequest("Could not read the request body".into())
            }
        })?;
        parse_json(&bytes).map(Json)
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

fn has_json_content_type(req: &Request) -> bool {
    let Some(value) = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Deserialises a JSON document, describing failures the way the API does.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(describe_json_error)?;
    de.end().map_err(|e| {
        ApiError::BadRequest(format!("Malformed JSON body: {}", without_position(&e)))
    })?;
    Ok(value)
}

fn describe_json_error(err: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = err.path().to_string();
    let inner = err.inner();
    if !inner.is_data() {
        return ApiError::BadRequest(format!("Malformed JSON body: {}", without_position(inner)));
    }
    let message = without_position(inner);
    if let Some(name) = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'))
    {
        let field = if path == "." {
            name.to_string()
        } else {
            format!("{path}.{name}")
        };
        return ApiError::Validation(vec![FieldError::new(
            field.clone(),
            format!("{field} is required"),
        )]);
    }
    if path == "." {
        return ApiError::BadRequest(format!("Invalid JSON body: {message}"));
    }
    ApiError::Validation(vec![FieldError::new(
        path.clone(),
        format!("{path} is invalid: {message}"),
    )])
}

fn without_position(err: &serde_json::Error) -> String {
    let text = err.to_string();
    match text.find(" at line ") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

/// A query string. A malformed one is a 400 in the API's error format.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        serde_urlencoded_from(query).map(Query)
    }
}

fn serde_urlencoded_from<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    axum::extract::Query::<T>::try_from_uri(
        &format!("/?{query}")
            .parse()
            .map_err(|_| ApiError::BadRequest("Invalid query string".into()))?,
    )
    .map(|q| q.0)
    .map_err(|rejection| ApiError::BadRequest(rejection.body_text()))
}

/// The `:id` segment of a resource path. Ids are UUIDs; anything else cannot
/// name a resource, so it is a 404 rather than a 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Id(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(raw) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|_| ApiError::NotFound)?;
        Uuid::parse_str(&raw)
            .map(Id)
            .map_err(|_| ApiError::NotFound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Signup {
        email: String,
        password: String,
    }

    fn fields(err: ApiError) -> Vec<(Option<String>, String)> {
        match err {
            ApiError::Validation(f) => f.into_iter().map(|f| (f.field, f.message)).collect(),
            ApiError::BadRequest(m) => vec![(None, m)],
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_missing_field_is_reported_against_that_field() {
        let err = parse_json::<Signup>(br#"{"email":"a@b.c"}"#).expect_err("must fail");
        assert_eq!(
            fields(err),
            vec![(Some("password".into()), "password is required".into())]
        );
    }

    #[test]
    fn a_mistyped_field_is_reported_against_that_field() {
        let err =
            parse_json::<Signup>(br#"{"email":"a@b.c","password":12}"#).expect_err("must fail");
        let entries = fields(err);
        assert_eq!(entries[0].0.as_deref(), Some("password"));
    }

    #[test]
    fn malformed_json_is_a_bad_request_without_field() {
        let err = parse_json::<Signup>(br#"{"email":"#).expect_err("must fail");
        let entries = fields(err);
        assert!(entries[0].0.is_none());
        assert!(
            entries[0].1.starts_with("Malformed JSON body"),
            "{}",
            entries[0].1
        );
    }

    #[test]
    fn trailing_garbage_is_malformed() {
        let err =
            parse_json::<Signup>(br#"{"email":"a","password":"b"} x"#).expect_err("must fail");
        assert!(matches!(err, ApiError::BadRequest(_)));
    }
}
