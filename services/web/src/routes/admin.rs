//! `/admin/users`: the page on which an admin bans or unbans a user by id.
//! Who is an admin is the auth API's decision (`ADMIN_EMAILS`): anyone
//! signed in sees the form, and the API refuses everyone else (403).

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;
use uuid::Uuid;

use crate::api::{ApiError, User};
use crate::error::PageError;
use crate::extract::{Form, Visitor};
use crate::routes::page;
use crate::startup::AppState;
use crate::view::FormErrors;

/// This page's path.
const HERE: &str = "/admin/users";

pub(super) fn router() -> Router<AppState> {
    Router::new().route(HERE, get(form).post(submitted))
}

#[derive(Template)]
#[template(path = "admin.html")]
struct AdminPage {
    user: Option<User>,
    /// Kept on error.
    user_id: String,
    reason: String,
    errors: FormErrors,
    /// What the last action did, once it succeeded.
    done: Option<String>,
}

#[derive(Deserialize, Default)]
struct BanForm {
    #[serde(default)]
    user_id: String,
    #[serde(default)]
    reason: String,
    /// `ban` or `unban`: which button was pressed.
    #[serde(default)]
    action: String,
}

async fn form(State(state): State<AppState>, visitor: Visitor) -> Result<Response, PageError> {
    let user = state.api.current_user(&visitor).await?;
    if user.is_none() {
        return Err(PageError::SignIn { next: HERE.into() });
    }
    page(
        StatusCode::OK,
        &AdminPage {
            user,
            user_id: String::new(),
            reason: String::new(),
            errors: FormErrors::none(),
            done: None,
        },
    )
}

/// Sends the ban or unban to the auth API: the form again, saying what
/// happened, or with the API's errors (a missing reason, an unknown user).
async fn submitted(
    State(state): State<AppState>,
    visitor: Visitor,
    Form(input): Form<BanForm>,
) -> Result<Response, PageError> {
    let ban = match input.action.as_str() {
        "ban" => true,
        "unban" => false,
        _ => return Err(PageError::BadForm),
    };
    let user = state.api.current_user(&visitor).await?;
    let again = |status, errors, done| {
        page(
            status,
            &AdminPage {
                user: user.clone(),
                user_id: input.user_id.clone(),
                reason: input.reason.clone(),
                errors,
                done,
            },
        )
    };
    let Ok(id) = Uuid::parse_str(input.user_id.trim()) else {
        return again(
            StatusCode::BAD_REQUEST,
            FormErrors::about("user_id", "Enter the user's id (a UUID)"),
            None,
        );
    };
    match state.api.set_ban(&visitor, id, &input.reason, ban).await {
        Ok(result) => {
            let done = if result.banned {
                format!("{} is banned.", result.email)
            } else {
                format!("{} is no longer banned.", result.email)
            };
            again(StatusCode::OK, FormErrors::none(), Some(done))
        }
        Err(ApiError::Refused(refusal)) if refusal.status == StatusCode::NOT_FOUND => again(
            StatusCode::NOT_FOUND,
            FormErrors::about("user_id", "No user has this id"),
            None,
        ),
        Err(err) => match err.into_shown() {
            Ok(refusal) => again(
                StatusCode::BAD_REQUEST,
                FormErrors::from_refusal(&refusal, &["reason"]),
                None,
            ),
            Err(err) => Err(err.owned_at(HERE, "Only administrators can ban and unban users.")),
        },
    }
}
