//! `/api/users/:id/ban` and `/unban`: admins only (`ADMIN_EMAILS`).

use axum::extract::State;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use common::ApiError;
use common::error::ApiResult;
use common::extract::{Id, Json};
use common::openapi::{Forbidden, JsonBodyErrors, NotFound, Unauthorized};
use common::session::CurrentUser;

use crate::bans::{self, BanState};
use crate::startup::AppState;

/// The tag of these operations in the API document.
const TAG: &str = "bans";

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(ban))
        .routes(routes!(unban))
}

/// The longest reason kept.
const MAX_REASON: usize = 500;

/// Why the user is banned (required, at most 500 characters) or unbanned
/// (optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
struct BanBody {
    #[serde(default)]
    reason: String,
}

fn admin(state: &AppState, user: CurrentUser) -> Result<CurrentUser, ApiError> {
    if state.admins.iter().any(|a| a == &user.email) {
        Ok(user)
    } else {
        Err(ApiError::Forbidden)
    }
}

fn reason(body: BanBody, required: bool) -> Result<Option<String>, ApiError> {
    let reason = body.reason.trim().to_string();
    if reason.chars().count() > MAX_REASON {
        return Err(ApiError::field(
            "reason",
            format!("Reason must be at most {MAX_REASON} characters"),
        ));
    }
    if reason.is_empty() {
        return if required {
            Err(ApiError::field("reason", "A reason is required"))
        } else {
            Ok(None)
        };
    }
    Ok(Some(reason))
}

/// Bans the user: 200 with the ban state; 400 without a reason or when an
/// admin bans themselves; 403 for non-admins; 404 for an unknown user.
#[utoipa::path(
    post,
    path = "/api/users/{id}/ban",
    operation_id = "banUser",
    tag = TAG,
    params(("id" = Uuid, Path, description = "The user's id")),
    request_body = BanBody,
    security(("session" = [])),
    responses(
        (status = 200, description = "The user's ban state", body = BanState),
        JsonBodyErrors,
        Unauthorized,
        Forbidden,
        NotFound,
    )
)]
async fn ban(
    State(state): State<AppState>,
    user: CurrentUser,
    Id(id): Id,
    Json(body): Json<BanBody>,
) -> ApiResult<Json<BanState>> {
    set(state, user, id, body, true).await
}

/// Lifts the user's ban (the reason is optional).
#[utoipa::path(
    post,
    path = "/api/users/{id}/unban",
    operation_id = "unbanUser",
    tag = TAG,
    params(("id" = Uuid, Path, description = "The user's id")),
    request_body = BanBody,
    security(("session" = [])),
    responses(
        (status = 200, description = "The user's ban state", body = BanState),
        JsonBodyErrors,
        Unauthorized,
        Forbidden,
        NotFound,
    )
)]
async fn unban(
    State(state): State<AppState>,
    user: CurrentUser,
    Id(id): Id,
    Json(body): Json<BanBody>,
) -> ApiResult<Json<BanState>> {
    set(state, user, id, body, false).await
}

async fn set(
    state: AppState,
    user: CurrentUser,
    id: uuid::Uuid,
    body: BanBody,
    ban: bool,
) -> ApiResult<Json<BanState>> {
    let admin = admin(&state, user)?;
    let reason = reason(body, ban)?;
    if ban && admin.id == id {
        return Err(ApiError::BadRequest("You cannot ban yourself".into()));
    }
    Ok(Json(
        bans::set(&state.pool, &state.sessions, &admin, id, ban, reason).await?,
    ))
}
