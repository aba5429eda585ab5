//! `/api/users`: sign up, sign in, refresh, sign out (here or everywhere),
//! current user.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Redirect;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tower_cookies::Cookies;

use common::ApiError;
use common::client_ip::ClientIp;
use common::error::ApiResult;
use common::extract::{Json, Query};
use common::http::local_path;
use common::session::{CurrentUser, MaybeUser, REFRESH_PATH};

use crate::domain::CredentialsBody;
use crate::sessions::{self, Refreshed};
use crate::startup::AppState;
use crate::store;

/// The web client's sign-in page.
const SIGN_IN_PAGE: &str = "/auth/signin";
/// The web client's page for a banned account.
const BANNED_PAGE: &str = "/auth/banned";

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/users/signup", post(signup))
        .route("/api/users/signin", post(signin))
        .route("/api/users/signout", post(signout))
        .route("/api/users/signout-everywhere", post(signout_everywhere))
        .route(REFRESH_PATH, post(refresh).get(refresh_and_return))
        .route("/api/users/currentuser", get(current_user))
}

#[derive(Serialize)]
struct UserResponse {
    id: uuid::Uuid,
    email: String,
}

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
async fn signout(State(state): State<AppState>, cookies: Cookies) -> ApiResult<StatusCode> {
    sessions::sign_out(&state.pool, &state.sessions, &cookies).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ends every session of the signed-in user, on every device.
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

async fn current_user(MaybeUser(user): MaybeUser) -> Json<Value> {
    Json(json!({ "currentUser": user }))
}
