//! `/auth/signup`, `/auth/signin`, `/auth/signout`: the forms of the auth
//! API. The session cookie the API sets (or clears) is passed back to the
//! browser with the redirect.

use askama::Template;
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;

use crate::api::{ApiError, User};
use crate::error::{PageError, local_path};
use crate::extract::{Form, Visitor};
use crate::routes::{page, redirect_with_cookies};
use crate::startup::AppState;
use crate::view::FormErrors;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/signup", get(signup_form).post(signup))
        .route("/auth/signin", get(signin_form).post(signin))
        .route("/auth/signout", post(signout))
        .route("/auth/banned", get(banned))
}

/// Which of the two forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    SignUp,
    SignIn,
}

#[derive(Template)]
#[template(path = "auth.html")]
struct AuthPage {
    user: Option<User>,
    mode: Mode,
    /// Kept on error; the password is never written back into a page.
    email: String,
    /// Where to go once signed in (a local path).
    next: String,
    errors: FormErrors,
}

impl AuthPage {
    fn heading(&self) -> &'static str {
        match self.mode {
            Mode::SignUp => "Create your account",
            Mode::SignIn => "Sign in",
        }
    }

    fn action(&self) -> &'static str {
        match self.mode {
            Mode::SignUp => "/auth/signup",
            Mode::SignIn => "/auth/signin",
        }
    }

    fn is_signup(&self) -> bool {
        self.mode == Mode::SignUp
    }
}

#[derive(Deserialize, Default)]
struct Credentials {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

#[derive(Deserialize, Default)]
struct NextQuery {
    #[serde(default)]
    next: String,
}

fn next_of(query: Option<String>) -> String {
    let next = query
        .and_then(|q| serde_urlencoded::from_str::<NextQuery>(&q).ok())
        .map(|q| q.next)
        .unwrap_or_default();
    local_path(&next).to_string()
}

async fn form(
    state: &AppState,
    visitor: &Visitor,
    mode: Mode,
    next: String,
) -> Result<Response, PageError> {
    let user = state.api.current_user(visitor).await?;
    page(
        StatusCode::OK,
        &AuthPage {
            user,
            mode,
            email: String::new(),
            next,
            errors: FormErrors::none(),
        },
    )
}

async fn signup_form(
    State(state): State<AppState>,
    visitor: Visitor,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    form(&state, &visitor, Mode::SignUp, next_of(query)).await
}

async fn signin_form(
    State(state): State<AppState>,
    visitor: Visitor,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    form(&state, &visitor, Mode::SignIn, next_of(query)).await
}

async fn signup(
    State(state): State<AppState>,
    visitor: Visitor,
    Form(input): Form<Credentials>,
) -> Result<Response, PageError> {
    submitted(&state, &visitor, Mode::SignUp, input).await
}

async fn signin(
    State(state): State<AppState>,
    visitor: Visitor,
    Form(input): Form<Credentials>,
) -> Result<Response, PageError> {
    submitted(&state, &visitor, Mode::SignIn, input).await
}

/// Sends the form to the auth API. Signed in: back to where the visitor
/// was going, with the cookie. Refused: the form again, with the errors and
/// the email kept.
async fn submitted(
    state: &AppState,
    visitor: &Visitor,
    mode: Mode,
    input: Credentials,
) -> Result<Response, PageError> {
    let (email, password) = (&input.email, &input.password);
    let reply = match mode {
        Mode::SignUp => state.api.sign_up(visitor, email, password).await,
        Mode::SignIn => state.api.sign_in(visitor, email, password).await,
    };
    let next = local_path(&input.next).to_string();
    let refusal = match reply {
        Ok(reply) => {
            tracing::info!(user_id = %reply.value.id, "signed in through the web");
            return Ok(redirect_with_cookies(&next, &reply.headers));
        }
        Err(ApiError::Refused(refusal)) => refusal,
        Err(err) => return Err(err.into()),
    };
    let user = state.api.current_user(visitor).await?;
    page(
        StatusCode::BAD_REQUEST,
        &AuthPage {
            user,
            mode,
            email: input.email,
            next,
            errors: FormErrors::from_refusal(&refusal, &["email", "password"]),
        },
    )
}

async fn signout(State(state): State<AppState>, visitor: Visitor) -> Result<Response, PageError> {
    let headers = state.api.sign_out(&visitor).await?;
    Ok(redirect_with_cookies("/", &headers))
}

/// The page a banned account is sent to. The browser is signed out on the
/// way (its cookies cleared), so the next visit starts anonymous.
async fn banned(State(state): State<AppState>, visitor: Visitor) -> Result<Response, PageError> {
    let headers = state.api.sign_out(&visitor).await?;
    let mut response = page(
        StatusCode::FORBIDDEN,
        &crate::error::ErrorPage {
            user: None,
            heading: "This account is banned",
            message: "An administrator has banned this account, so it can no longer buy or \
                      sell tickets. If you think this is a mistake, contact support.",
        },
    )?;
    for value in headers.get_all(axum::http::header::SET_COOKIE) {
        response
            .headers_mut()
            .append(axum::http::header::SET_COOKIE, value.clone());
    }
    Ok(response)
}
