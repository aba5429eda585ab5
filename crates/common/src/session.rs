//! Sessions: a signed JWT (HS256 only, with `iat` and `exp`) carried in an
//! HttpOnly, SameSite=Lax cookie that is `Secure` when the site is served over
//! HTTPS. Extractors give handlers the signed-in user; a forged, expired or
//! unsigned token is simply anonymous.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use tower_cookies::cookie::SameSite;
use tower_cookies::{Cookie, Cookies};
use uuid::Uuid;

use crate::config::{ExposeSecret as _, SessionSettings};
use crate::error::ApiError;

/// The name of the session cookie.
pub const COOKIE_NAME: &str = "session";

/// Tolerated clock skew between the service that signed a token and the one
/// reading it.
const LEEWAY_SECONDS: u64 = 30;

/// The claims inside a session token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user's id.
    pub sub: Uuid,
    /// The e-mail address the user signed up with.
    pub email: String,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Expires at, seconds since the epoch.
    pub exp: i64,
}

/// The signed-in user, as the session token names them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CurrentUser {
    /// The user's id.
    pub id: Uuid,
    /// The user's e-mail address.
    pub email: String,
}

/// Issues and checks session tokens and cookies. Cheap to clone.
#[derive(Clone)]
pub struct Sessions(Arc<Inner>);

struct Inner {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
    secure_cookie: bool,
}

impl Sessions {
    /// Sessions signed and checked with `settings`' key and lifetime.
    pub fn new(settings: &SessionSettings) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_exp = true;
        validation.set_required_spec_claims(&["exp", "iat", "sub"]);
        Self(Arc::new(Inner {
            encoding: EncodingKey::from_secret(settings.key.expose_secret().as_bytes()),
            decoding: DecodingKey::from_secret(settings.key.expose_secret().as_bytes()),
            validation,
            ttl: settings.ttl,
            secure_cookie: settings.secure_cookie,
        }))
    }

    /// How long a session lasts.
    pub fn ttl(&self) -> Duration {
        self.0.ttl
    }

    /// Signs a token for `user`, valid from now for the configured lifetime.
    pub fn issue(&self, user: &CurrentUser) -> anyhow::Result<String> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: user.id,
            email: user.email.clone(),
            iat: now,
            exp: now + i64::try_from(self.0.ttl.as_secs())?,
        };
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.0.encoding,
        )?)
    }

    /// The user a token names, or `None` when the token is forged, expired,
    /// issued in the future, or signed with anything but HS256 and our key.
    pub fn verify(&self, token: &str) -> Option<CurrentUser> {
        let data =
            jsonwebtoken::decode::<Claims>(token, &self.0.decoding, &self.0.validation).ok()?;
        let now = chrono::Utc::now().timestamp();
        if data.claims.iat > now + LEEWAY_SECONDS as i64 {
            return None;
        }
        Some(CurrentUser {
            id: data.claims.sub,
            email: data.claims.email,
        })
    }

    /// Signs a token for `user` and sets it as the session cookie.
    pub fn sign_in(&self, cookies: &Cookies, user: &CurrentUser) -> anyhow::Result<()> {
        let token = self.issue(user)?;
        let max_age =
            tower_cookies::cookie::time::Duration::seconds(i64::try_from(self.0.ttl.as_secs())?);
        cookies.add(self.cookie(token).max_age(max_age).build());
        Ok(())
    }

    /// Clears the session cookie.
    pub fn sign_out(&self, cookies: &Cookies) {
        cookies.remove(self.cookie(String::new()).build());
    }

    fn cookie(&self, value: String) -> tower_cookies::cookie::CookieBuilder<'static> {
        Cookie::build((COOKIE_NAME, value))
            .path("/")
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(self.0.secure_cookie)
    }

    fn user_from(&self, cookies: &Cookies) -> Option<CurrentUser> {
        cookies
            .get(COOKIE_NAME)
            .and_then(|c| self.verify(c.value()))
    }
}

/// The signed-in user, if any. Never rejects.
#[derive(Debug, Clone)]
pub struct MaybeUser(pub Option<CurrentUser>);

impl<S> FromRequestParts<S> for MaybeUser
where
    Sessions: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let cookies = Cookies::from_request_parts(parts, state)
            .await
            .map_err(|(_, msg)| {
                ApiError::Internal(anyhow::anyhow!("cookie layer missing: {msg}"))
            })?;
        Ok(MaybeUser(Sessions::from_ref(state).user_from(&cookies)))
    }
}

/// A signed-in user; the request is refused with 401 otherwise.
impl<S> FromRequestParts<S> for CurrentUser
where
    Sessions: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let MaybeUser(user) = MaybeUser::from_request_parts(parts, state).await?;
        user.ok_or(ApiError::Unauthorized)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn sessions(ttl: Duration) -> Sessions {
        Sessions::new(&SessionSettings {
            key: "k".repeat(32).into(),
            ttl,
            secure_cookie: false,
        })
    }

    fn user() -> CurrentUser {
        CurrentUser {
            id: Uuid::now_v7(),
            email: "a@example.com".into(),
        }
    }

    #[test]
    fn an_issued_token_names_its_user() {
        let s = sessions(Duration::from_secs(60));
        let token = s.issue(&user()).expect("issue");
        assert_eq!(
            s.verify(&token).map(|u| u.email),
            Some("a@example.com".into())
        );
    }

    #[test]
    fn a_token_signed_with_another_key_is_anonymous() {
        let other = Sessions::new(&SessionSettings {
            key: "x".repeat(32).into(),
            ttl: Duration::from_secs(60),
            secure_cookie: false,
        });
        let token = other.issue(&user()).expect("issue");
        assert!(sessions(Duration::from_secs(60)).verify(&token).is_none());
    }

    fn token_with(iat_offset: i64, exp_offset: i64) -> String {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: Uuid::now_v7(),
            email: "a@example.com".into(),
            iat: now + iat_offset,
            exp: now + exp_offset,
        };
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret("k".repeat(32).as_bytes()),
        )
        .expect("encode")
    }

    #[test]
    fn an_expired_token_is_anonymous() {
        let s = sessions(Duration::from_secs(60));
        assert!(s.verify(&token_with(-3600, -600)).is_none());
        assert!(
            s.verify(&token_with(-3600, 600)).is_some(),
            "the same token unexpired is valid"
        );
    }

    #[test]
    fn an_unsigned_alg_none_token_is_anonymous() {
        let s = sessions(Duration::from_secs(60));
        let now = chrono::Utc::now().timestamp();
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(
            format!(
                r#"{{"sub":"{}","email":"a@example.com","iat":{now},"exp":{}}}"#,
                Uuid::now_v7(),
                now + 600
            )
            .as_bytes(),
        );
        assert!(s.verify(&format!("{header}.{payload}.")).is_none());
    }

    #[test]
    fn a_token_issued_in_the_future_is_anonymous() {
        let s = sessions(Duration::from_secs(60));
        assert!(s.verify(&token_with(3600, 7200)).is_none());
    }
}
