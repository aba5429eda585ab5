//! `/api/users`: sign up, sign in, refresh, sign out (here or everywhere),
//! current user.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Redirect;
use serde::{Deserialize, Serialize};
use tower_cookies::Cookies;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use common::ApiError;
use common::client_ip::ClientIp;
use common::error::ApiResult;
use common::extract::{Json, Query};
use common::http::local_path;
use common::openapi::{JsonBodyErrors, TooManyRequests, Unauthorized};
use common::session::{CurrentUser, MaybeUser};

use crate::domain::CredentialsBody;
use crate::sessions::{self, Refreshed};
use crate::startup::AppState;
use crate::store;

/// The web client's sign-in page.
const SIGN_IN_PAGE: &str = "/auth/signin";
/// The web client's page for a banned account.
const BANNED_PAGE: &str = "/auth/banned";

/// The tag of these operations in the API document.
const TAG: &str = "users";

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(signup))
        .routes(routes!(signin))
        .routes(routes!(signout))
        .routes(routes!(signout_everywhere))
        .routes(routes!(refresh, refresh_and_return))
        .routes(routes!(current_user))
}

/// The user just signed up or in.
#[derive(Serialize, ToSchema)]
struct UserResponse {
    id: uuid::Uuid,
    email: String,
}

/// Who the session cookie names, or `null` without a valid one.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct CurrentUserResponse {
    #[schema(required = true)]
    current_user: Option<CurrentUser>,
}

/// Signs a new user up, and in: sets the session cookie.
#[utoipa::path(
    post,
    path = "/api/users/signup",
    operation_id = "signUp",
    tag = TAG,
    request_body = CredentialsBody,
    responses(
        (status = 201, description = "Signed up and signed in; `Set-Cookie` carries the session and refresh cookies", body = UserResponse),
        JsonBodyErrors,
        TooManyRequests,
    )
)]
async fn signup(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    cookies: Cookies,
    Json(body): Json<CredentialsBody>,
) -> ApiResult<(StatusCode, Json<UserResponse>)> {
    let credentials = body.for_signup()?;
    let attempt = state.front_door.admit(ip, &credentials.email).await?;
    // A cheap early answer for the common case; the unique constraint in
    // insert_user is what decides under concurrency.
    if store::email_taken(&state.pool, &credentials.email).await? {
        return Err(ApiError::field("email", "Email in use"));
    }
    let hash = state.passwords.hash(credentials.password).await?;
    let id = store::insert_user(&state.pool, &credentials.email, &hash).await?;
    state.front_door.succeeded(attempt).await;
    let user = CurrentUser {
        id,
        email: credentials.email,
    };
    sessions::start(&state.pool, &state.sessions, &cookies, &user).await?;
    tracing::info!(user_id = %id, "user signed up");
    Ok((
        StatusCode::CREATED,
        Json(UserResponse {
            id,
            email: user.email,
        }),
    ))
}

/// Signs a user in with e-mail and password: sets the session cookie.
#[utoipa::path(
    post,
    path = "/api/users/signin",
    operation_id = "signIn",
    tag = TAG,
    request_body = CredentialsBody,
    responses(
        (status = 200, description = "Signed in; `Set-Cookie` carries the session and refresh cookies", body = UserResponse),
        JsonBodyErrors,
        (status = 403, description = "The account is banned", body = common::error::ErrorBody),
        TooManyRequests,
    )
)]
async fn signin(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    cookies: Cookies,
    Json(body): Json<CredentialsBody>,
) -> ApiResult<Json<UserResponse>> {
    let credentials = body.for_signin()?;
    let attempt = state.front_door.admit(ip, &credentials.email).await?;
    let user = store::find_by_email(&state.pool, &credentials.email).await?;
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let valid = state.passwords.verify(credentials.password, stored).await?;
    let user = match user {
        Some(user) if valid => user,
        _ => return Err(ApiError::BadRequest("Invalid credentials".into())),
    };
    state.front_door.succeeded(attempt).await;
    if user.banned {
        return Err(ApiError::Banned);
    }
    let current = CurrentUser {
        id: user.id,
        email: user.email,
    };
    sessions::start(&state.pool, &state.sessions, &cookies, &current).await?;
    Ok(Json(UserResponse {
        id: current.id,
        email: current.email,
    }))
}

/// Ends this browser's session: its refresh family is revoked and its
/// access token denied until it expires. Always 204, cookies cleared.
#[utoipa::path(
    post,
    path = "/api/users/signout",
    operation_id = "signOut",
    tag = TAG,
    security((), ("session" = [])),
    responses((status = 204, description = "The session is ended and its cookies cleared")),
)]
async fn signout(State(state): State<AppState>, cookies: Cookies) -> ApiResult<StatusCode> {
    sessions::sign_out(&state.pool, &state.sessions, &cookies).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ends every session of the signed-in user, on every device.
#[utoipa::path(
    post,
    path = "/api/users/signout-everywhere",
    operation_id = "signOutEverywhere",
    tag = TAG,
    security(("session" = [])),
    responses(
        (status = 204, description = "Every session of the user is ended; this browser's cookies are cleared"),
        Unauthorized,
    )
)]
async fn signout_everywhere(
    State(state): State<AppState>,
    cookies: Cookies,
    user: CurrentUser,
) -> ApiResult<StatusCode> {
    sessions::sign_out_everywhere(&state.pool, &state.sessions, &cookies, user.id).await?;
    tracing::info!(user_id = %user.id, "signed out everywhere");
    Ok(StatusCode::NO_CONTENT)
}

/// Exchanges the refresh cookie for new cookies: 200 with the user; 401
/// (cookies cleared) when it is missing, unknown, expired, of an ended
/// session, or was already used (which ends its session); 403 when the user
/// is banned.
#[utoipa::path(
    post,
    path = "/api/users/refresh",
    operation_id = "refresh",
    tag = TAG,
    responses(
        (status = 200, description = "New session and refresh cookies (`Set-Cookie`); the old refresh token is spent", body = UserResponse),
        (status = 401, description = "No valid refresh cookie (missing, unknown, expired, of an ended session, or already used); cookies cleared", body = common::error::ErrorBody),
        (status = 403, description = "The account is banned", body = common::error::ErrorBody),
    )
)]
async fn refresh(State(state): State<AppState>, cookies: Cookies) -> ApiResult<Json<UserResponse>> {
    match sessions::refresh(&state.pool, &state.sessions, &cookies).await? {
        Refreshed::Rotated(user) => Ok(Json(UserResponse {
            id: user.id,
            email: user.email,
        })),
        Refreshed::Invalid | Refreshed::Reused => {
            state.sessions.clear_cookies(&cookies);
            Err(ApiError::Unauthorized)
        }
        Refreshed::Banned => {
            state.sessions.clear_cookies(&cookies);
            Err(ApiError::Banned)
        }
    }
}

/// Where a browser goes back to after [`refresh_and_return`].
#[derive(Deserialize)]
struct Return {
    #[serde(default)]
    next: String,
}

/// The web client's way to renew a session: the page that met a 401 sends
/// the browser here (the only path its refresh cookie is sent to). A 303
/// back to `next` (a local path) with new cookies; to the sign-in page
/// (cookies cleared) when the session cannot be renewed; to the web client's
/// banned page for a banned user. Rotating on a GET is safe from other
/// sites: they cannot read the new cookies, and the old token stays theirs
/// to never know.
#[utoipa::path(
    get,
    path = "/api/users/refresh",
    operation_id = "refreshAndReturn",
    tag = TAG,
    params(("next" = Option<String>, Query, description = "The local path to go back to (default `/`)")),
    responses(
        (status = 303, description = "Back to `next` with new cookies, or to the sign-in page (cookies cleared), or to the banned page"),
    )
)]
async fn refresh_and_return(
    State(state): State<AppState>,
    cookies: Cookies,
    Query(back): Query<Return>,
) -> ApiResult<Redirect> {
    let next = local_path(&back.next);
    Ok(
        match sessions::refresh(&state.pool, &state.sessions, &cookies).await? {
            Refreshed::Rotated(_) => Redirect::to(next),
            Refreshed::Invalid | Refreshed::Reused => {
                state.sessions.clear_cookies(&cookies);
                let query = serde_urlencoded::to_string([("next", next)])
                    .map_err(|e| ApiError::Internal(e.into()))?;
                Redirect::to(&format!("{SIGN_IN_PAGE}?{query}"))
            }
            Refreshed::Banned => {
                state.sessions.clear_cookies(&cookies);
                Redirect::to(BANNED_PAGE)
            }
        },
    )
}

/// The signed-in user, or `null`: never an error.
#[utoipa::path(
    get,
    path = "/api/users/currentuser",
    operation_id = "currentUser",
    tag = TAG,
    security((), ("session" = [])),
    responses((status = 200, description = "The user the session names, or null", body = CurrentUserResponse)),
)]
async fn current_user(MaybeUser(user): MaybeUser) -> Json<CurrentUserResponse> {
    Json(CurrentUserResponse { current_user: user })
}
