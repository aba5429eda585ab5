//! `/api/users`: sign up, sign in, sign out, current user.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use tower_cookies::Cookies;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use common::ApiError;
use common::error::ApiResult;
use common::extract::Json;
use common::openapi::JsonBodyErrors;
use common::session::{CurrentUser, MaybeUser};

use crate::domain::CredentialsBody;
use crate::startup::AppState;
use crate::store;

/// The tag of these operations in the API document.
const TAG: &str = "users";

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(signup))
        .routes(routes!(signin))
        .routes(routes!(signout))
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
        (status = 201, description = "Signed up and signed in; `Set-Cookie` carries the session", body = UserResponse),
        JsonBodyErrors,
    )
)]
async fn signup(
    State(state): State<AppState>,
    cookies: Cookies,
    Json(body): Json<CredentialsBody>,
) -> ApiResult<(StatusCode, Json<UserResponse>)> {
    let credentials = body.for_signup()?;
    // A cheap early answer for the common case; the unique constraint in
    // insert_user is what decides under concurrency.
    if store::email_taken(&state.pool, &credentials.email).await? {
        return Err(ApiError::field("email", "Email in use"));
    }
    let hash = state.passwords.hash(credentials.password).await?;
    let id = store::insert_user(&state.pool, &credentials.email, &hash).await?;
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

/// Signs a user in with e-mail and password: sets the session cookie.
#[utoipa::path(
    post,
    path = "/api/users/signin",
    operation_id = "signIn",
    tag = TAG,
    request_body = CredentialsBody,
    responses(
        (status = 200, description = "Signed in; `Set-Cookie` carries the session", body = UserResponse),
        JsonBodyErrors,
    )
)]
async fn signin(
    State(state): State<AppState>,
    cookies: Cookies,
    Json(body): Json<CredentialsBody>,
) -> ApiResult<Json<UserResponse>> {
    let credentials = body.for_signin()?;
    let user = store::find_by_email(&state.pool, &credentials.email).await?;
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let valid = state.passwords.verify(credentials.password, stored).await?;
    let user = match user {
        Some(user) if valid => user,
        _ => return Err(ApiError::BadRequest("Invalid credentials".into())),
    };
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

/// Signs out: clears the session cookie. Signed in or not, the answer is 204.
#[utoipa::path(
    post,
    path = "/api/users/signout",
    operation_id = "signOut",
    tag = TAG,
    responses((status = 204, description = "The session cookie is cleared")),
)]
async fn signout(State(state): State<AppState>, cookies: Cookies) -> StatusCode {
    state.sessions.sign_out(&cookies);
    StatusCode::NO_CONTENT
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
