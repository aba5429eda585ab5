//! The one error type of the HTTP API. Whatever goes wrong in a handler, the
//! client sees `{"errors": [{"message": "…", "field": "…"}]}` with a fitting
//! status; internal errors are logged with their whole chain and shown only as
//! "Something went wrong".

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// One entry of the error body. `field` is set only when a specific input
/// field is at fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// What is wrong, for people.
    pub message: String,
    /// The request field at fault, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub field: Option<String>,
}

impl FieldError {
    /// An entry about `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            field: Some(field.into()),
        }
    }
}

/// The body of every error answer (schema `Errors` in the API documents).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Errors)]
pub struct ErrorBody {
    /// At least one entry.
    pub errors: Vec<FieldError>,
}

/// Every way a request can fail, as the client is told about it.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: a business rule refused the request (e.g. "Email in use").
    #[error("{0}")]
    BadRequest(String),
    /// 400: one entry per bad input field.
    #[error("invalid input")]
    Validation(Vec<FieldError>),
    /// 401: the request needs a signed-in user and has none.
    #[error("Not signed in")]
    Unauthorized,
    /// 402: the payment provider refused the charge (e.g. a declined card);
    /// the message is the provider's own.
    #[error("{0}")]
    PaymentRequired(String),
    /// 403: signed in, but not allowed to touch this resource.
    #[error("Not allowed")]
    Forbidden,
    /// 404: unknown id or route.
    #[error("Not found")]
    NotFound,
    /// 405: the route exists, the method does not.
    #[error("Method not allowed")]
    MethodNotAllowed,
    /// 413: the body is larger than the server accepts.
    #[error("Request body is too large")]
    PayloadTooLarge,
    /// 415: a JSON body was expected.
    #[error("Expected a JSON body with `Content-Type: application/json`")]
    UnsupportedMediaType,
    /// 500: anything unexpected. Logged with its chain; never shown.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    /// A validation error on a single field.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }

    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) | Self::Validation(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::PaymentRequired(_) => StatusCode::PAYMENT_REQUIRED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn entries(self) -> Vec<FieldError> {
        match self {
            Self::Validation(fields) => fields,
            Self::Internal(_) => vec![FieldError {
                message: "Something went wrong".into(),
                field: None,
            }],
            other => vec![FieldError {
                message: other.to_string(),
                field: None,
            }],
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::Internal(err) = &self {
            tracing::error!(error = format!("{err:#}"), "request failed");
        }
        let status = self.status();
        (
            status,
            Json(ErrorBody {
                errors: self.entries(),
            }),
        )
            .into_response()
    }
}

impl From<validator::ValidationErrors> for ApiError {
    fn from(errors: validator::ValidationErrors) -> Self {
        let mut fields: Vec<FieldError> = errors
            .field_errors()
            .into_iter()
            .flat_map(|(field, errs)| {
                errs.iter().map(move |e| {
                    let message = e
                        .message
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_else(|| format!("{field} is invalid"));
                    FieldError::new(field.to_string(), message)
                })
            })
            .collect();
        fields.sort_by(|a, b| a.field.cmp(&b.field));
        Self::Validation(fields)
    }
}

/// Names the outcome of a violated constraint where the query is written,
/// realworld's style:
/// `.execute(pool).await.on_constraint("users_email_key", || ApiError::field("email", "Email in use"))?`.
pub trait ResultExt<T> {
    /// A violation of `constraint` becomes `violated()`; every other
    /// database error becomes `E` as it is (for [`ApiError`], internal).
    fn on_constraint<E: From<sqlx::Error>>(
        self,
        constraint: &str,
        violated: impl FnOnce() -> E,
    ) -> Result<T, E>;
}

impl<T> ResultExt<T> for Result<T, sqlx::Error> {
    fn on_constraint<E: From<sqlx::Error>>(
        self,
        constraint: &str,
        violated: impl FnOnce() -> E,
    ) -> Result<T, E> {
        self.map_err(|err| match &err {
            sqlx::Error::Database(db) if db.constraint() == Some(constraint) => violated(),
            _ => E::from(err),
        })
    }
}

impl From<sqlx::Error> for ApiError {
    /// A database error the caller did not expect: internal.
    fn from(err: sqlx::Error) -> Self {
        Self::Internal(anyhow::Error::new(err))
    }
}

/// The result type of every handler.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::to_bytes;

    async fn body_of(err: ApiError) -> (StatusCode, serde_json::Value) {
        let response = err.into_response();
        let status = response.status();
        let bytes = to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        (status, serde_json::from_slice(&bytes).expect("json"))
    }

    #[tokio::test]
    async fn internal_errors_hide_their_details() {
        let (status, body) = body_of(ApiError::Internal(anyhow::anyhow!(
            "db password is hunter2"
        )))
        .await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            body,
            serde_json::json!({"errors": [{"message": "Something went wrong"}]})
        );
    }

    #[tokio::test]
    async fn validation_errors_carry_one_entry_per_field() {
        let err = ApiError::Validation(vec![
            FieldError::new("email", "Email must be valid"),
            FieldError::new("password", "Password must be between 8 and 128 characters"),
        ]);
        let (status, body) = body_of(err).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["errors"].as_array().map(Vec::len), Some(2));
        assert_eq!(body["errors"][1]["field"], "password");
    }

    #[tokio::test]
    async fn client_errors_have_no_field() {
        let (status, body) = body_of(ApiError::NotFound).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(
            body,
            serde_json::json!({"errors": [{"message": "Not found"}]})
        );
    }

    #[tokio::test]
    async fn declined_payments_are_402_with_the_providers_message() {
        let (status, body) =
            body_of(ApiError::PaymentRequired("Your card was declined.".into())).await;
        assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
        assert_eq!(
            body,
            serde_json::json!({"errors": [{"message": "Your card was declined."}]})
        );
    }
}
