//! The one error type of the HTTP API. Whatever goes wrong in a handler, the
//! client sees `{"errors": [{"message": "…", "field": "…"}]}` with a fitting
//! status; internal errors are logged with their whole chain and shown only as
//! "Something went wrong". A database that cannot be reached (the pool
//! timed out, the connection failed) is a 503 with `Retry-After`: the
//! client may try again shortly, and nothing was changed.

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
    /// 403: a state-changing request from another origin (see
    /// [`crate::http::cross_origin_protection`]).
    #[error("Cross-origin request refused")]
    CrossOrigin,
    /// 403: the signed-in user is banned.
    #[error("This account is banned")]
    Banned,
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
    /// 429: too many attempts; answered with `Retry-After: retry_after_secs`.
    #[error("Too many attempts; try again in {retry_after_secs} seconds")]
    TooManyRequests {
        /// Whole seconds until an attempt can succeed again (at least 1).
        retry_after_secs: u64,
    },
    /// 503 with `Retry-After`: a dependency the request needs (the
    /// database) cannot be reached right now; retrying shortly is safe.
    #[error("The service is temporarily unavailable; please try again shortly")]
    Unavailable,
    /// 500: anything unexpected. Logged with its chain; never shown. One
    /// whose cause is an unreachable database answers as [`ApiError::Unavailable`].
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// How long a client is told to wait before retrying a 503, in seconds.
pub const RETRY_AFTER_SECONDS: u64 = 5;

/// Whether `err` says the database could not be reached (no connection in
/// time, a connection refused, reset or closed), rather than that a
/// statement failed: the request can be retried as it is.
pub fn is_unreachable(err: &sqlx::Error) -> bool {
    matches!(
        err,
        sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed
    )
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
            Self::Forbidden | Self::CrossOrigin | Self::Banned => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) if self.database_unreachable() => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// An internal error caused, somewhere in its chain, by an unreachable
    /// database.
    fn database_unreachable(&self) -> bool {
        let Self::Internal(err) = self else {
            return false;
        };
        err.chain().any(|cause| {
            cause
                .downcast_ref::<sqlx::Error>()
                .is_some_and(is_unreachable)
        })
    }

    fn entries(self) -> Vec<FieldError> {
        if self.database_unreachable() {
            return Self::Unavailable.entries();
        }
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
        let status = self.status();
        if let Self::Internal(err) = &self {
            if status == StatusCode::SERVICE_UNAVAILABLE {
                // Expected while the database is away; the readiness probe
                // and the pool metrics tell the story, one line per request
                // would drown it.
                tracing::warn!(error = format!("{err:#}"), "database unreachable");
            } else {
                tracing::error!(error = format!("{err:#}"), "request failed");
            }
        }
        let retry_after = match &self {
            Self::TooManyRequests { retry_after_secs } => Some(*retry_after_secs),
            _ if status == StatusCode::SERVICE_UNAVAILABLE => Some(RETRY_AFTER_SECONDS),
            _ => None,
        };
        let mut response = (
            status,
            Json(ErrorBody {
                errors: self.entries(),
            }),
        )
            .into_response();
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        response
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
    async fn an_unreachable_database_is_a_503_with_retry_after_even_behind_context() {
        use anyhow::Context as _;
        let failed: Result<(), sqlx::Error> = Err(sqlx::Error::PoolTimedOut);
        let err = ApiError::from(failed.context("loading the ticket").expect_err("failed"));
        let response = err.into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            response.headers().get("retry-after").map(|v| v.as_bytes()),
            Some(RETRY_AFTER_SECONDS.to_string().as_bytes())
        );
        let bytes = to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        let body: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(
            body["errors"][0]["message"],
            "The service is temporarily unavailable; please try again shortly"
        );
    }

    #[tokio::test]
    async fn too_many_requests_carry_retry_after() {
        let response = ApiError::TooManyRequests {
            retry_after_secs: 42,
        }
        .into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            response.headers().get("retry-after").map(|v| v.as_bytes()),
            Some(&b"42"[..])
        );
        let (_, body) = body_of(ApiError::TooManyRequests {
            retry_after_secs: 42,
        })
        .await;
        assert_eq!(
            body,
            serde_json::json!({"errors": [{"message": "Too many attempts; try again in 42 seconds"}]})
        );
    }

    #[tokio::test]
    async fn a_failed_statement_stays_a_500() {
        let err = ApiError::from(sqlx::Error::RowNotFound);
        assert_eq!(err.status(), StatusCode::INTERNAL_SERVER_ERROR);
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
