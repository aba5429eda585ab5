//! `/api/users`: sign up, sign in, sign out, current user.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde::Serialize;
use serde_json::{Value, json};
use tower_cookies::Cookies;

use common::ApiError;
use common::client_ip::ClientIp;
use common::error::ApiResult;
use common::extract::Json;
use common::session::{CurrentUser, MaybeUser};

use crate::domain::CredentialsBody;
use crate::startup::AppState;
use crate::store;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/users/signup", post(signup))
        .route("/api/users/signin", post(signin))
        .route("/api/users/signout", post(signout))
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
    state.sessions.sign_in(&cookies, &user)?;
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
    let current = CurrentUser {
        id: user.id,
        email: user.email,
    };
    state.sessions.sign_in(&cookies, &current)?;
    Ok(Json(UserResponse {
        id: current.id,
        email: current.email,
    }))
}

async fn signout(State(state): State<AppState>, cookies: Cookies) -> StatusCode {
    state.sessions.sign_out(&cookies);
    StatusCode::NO_CONTENT
}

async fn current_user(MaybeUser(user): MaybeUser) -> Json<Value> {
    Json(json!({ "currentUser": user }))
}
