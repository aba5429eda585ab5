//! Sessions: a short-lived access token (a JWT signed with HS256 only,
//! carrying `iss`, `aud`, `iat`, `nbf`, `exp`, a `jti` of its own and the
//! `sid` of its session) in an HttpOnly, SameSite=Lax cookie, `Secure` and
//! `__Host-`-prefixed when the site is served over HTTPS. The auth service
//! issues it with a refresh token (see `REFRESH_PATH`); every service checks
//! it here, then asks the [deny cache](crate::deny) whether the token, its
//! session or its user was revoked or banned. A forged, expired, early,
//! foreign or revoked token is simply anonymous; a banned user is refused.

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
use crate::deny::{DENY_CACHE_ERRORS, DenyCache, Standing};
use crate::error::ApiError;

/// The access cookie's name over plain HTTP (local development, tests).
pub const COOKIE_NAME: &str = "session";
/// The access cookie's name over HTTPS: `__Host-` makes browsers refuse it
/// unless it is `Secure`, has `Path=/` and no `Domain`, so no sibling
/// subdomain can plant or shadow it.
pub const SECURE_COOKIE_NAME: &str = "__Host-session";
/// The refresh cookie's name over plain HTTP.
pub const REFRESH_COOKIE_NAME: &str = "refresh";
/// The refresh cookie's name over HTTPS. `__Host-` would require `Path=/`,
/// and the refresh cookie is scoped to [`REFRESH_PATH`], so it gets the
/// `__Secure-` prefix (browsers then accept it only when `Secure`).
pub const SECURE_REFRESH_COOKIE_NAME: &str = "__Secure-refresh";
/// The only path the browser sends the refresh cookie to.
pub const REFRESH_PATH: &str = "/api/users/refresh";

/// Who issues access tokens (`iss`).
pub const ISSUER: &str = "buytickets-auth";
/// Who access tokens are for (`aud`): every service of the site.
pub const AUDIENCE: &str = "buytickets";

/// Tolerated clock skew between the service that signed a token and the one
/// reading it.
const LEEWAY_SECONDS: u64 = 30;

/// The claims inside an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user's id.
    pub sub: Uuid,
    /// The e-mail address the user signed up with.
    pub email: String,
    /// [`ISSUER`].
    pub iss: String,
    /// [`AUDIENCE`].
    pub aud: String,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Not valid before, seconds since the epoch.
    pub nbf: i64,
    /// Expires at, seconds since the epoch.
    pub exp: i64,
    /// This token's own id: what sign-out puts on the deny list.
    pub jti: Uuid,
    /// The session (refresh-token family) the token belongs to.
    pub sid: Uuid,
}

/// The signed-in user, as the session token names them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CurrentUser {
    /// The user's id.
    pub id: Uuid,
    /// The user's e-mail address.
    pub email: String,
}

/// A validly signed access token, decoded.
#[derive(Debug, Clone)]
pub struct Token {
    /// Whom it names.
    pub user: CurrentUser,
    /// Its claims.
    pub claims: Claims,
}

/// Issues and checks session tokens and cookies. Cheap to clone.
#[derive(Clone)]
pub struct Sessions(Arc<Inner>);

struct Inner {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    /// The same, with the expiry not checked: sign-out accepts an expired
    /// token to find the session to end.
    lenient: Validation,
    ttl: Duration,
    refresh_ttl: Duration,
    secure_cookie: bool,
    deny: Option<DenyCache>,
}

impl Sessions {
    /// Sessions signed and checked with `settings`' key and lifetimes, and
    /// checked against the deny cache at `settings.redis_url` when there is one.
    pub fn new(settings: &SessionSettings) -> anyhow::Result<Self> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
        let mut lenient = validation.clone();
        lenient.validate_exp = false;
        let deny = settings
            .redis_url
            .as_deref()
            .map(|url| DenyCache::new(url, &settings.cache_prefix))
            .transpose()?;
        Ok(Self(Arc::new(Inner {
            encoding: EncodingKey::from_secret(settings.key.expose_secret().as_bytes()),
            decoding: DecodingKey::from_secret(settings.key.expose_secret().as_bytes()),
            validation,
            lenient,
            ttl: settings.ttl,
            refresh_ttl: settings.refresh_ttl,
            secure_cookie: settings.secure_cookie,
            deny,
        })))
    }

    /// How long an access token lasts.
    pub fn ttl(&self) -> Duration {
        self.0.ttl
    }

    /// How long a refresh token lasts.
    pub fn refresh_ttl(&self) -> Duration {
        self.0.refresh_ttl
    }

    /// The deny cache, when one is configured.
    pub fn deny_cache(&self) -> Option<&DenyCache> {
        self.0.deny.as_ref()
    }

    /// The access cookie's name (depends on HTTPS).
    pub fn cookie_name(&self) -> &'static str {
        if self.0.secure_cookie {
            SECURE_COOKIE_NAME
        } else {
            COOKIE_NAME
        }
    }

    /// The refresh cookie's name (depends on HTTPS).
    pub fn refresh_cookie_name(&self) -> &'static str {
        if self.0.secure_cookie {
            SECURE_REFRESH_COOKIE_NAME
        } else {
            REFRESH_COOKIE_NAME
        }
    }

    /// Signs an access token for `user` in a new session of its own (tests,
    /// tools); auth signs them with [`Sessions::issue_in`].
    pub fn issue(&self, user: &CurrentUser) -> anyhow::Result<String> {
        self.issue_in(user, Uuid::now_v7())
    }

    /// Signs an access token for `user` in the session `sid`, valid from now
    /// for the configured lifetime, with a new `jti`.
    pub fn issue_in(&self, user: &CurrentUser, sid: Uuid) -> anyhow::Result<String> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: user.id,
            email: user.email.clone(),
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            iat: now,
            nbf: now,
            exp: now + i64::try_from(self.0.ttl.as_secs())?,
            jti: Uuid::new_v4(),
            sid,
        };
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.0.encoding,
        )?)
    }

    fn decode(&self, token: &str, validation: &Validation) -> Option<Token> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.0.decoding, validation).ok()?;
        let now = chrono::Utc::now().timestamp();
        if data.claims.iat > now + LEEWAY_SECONDS as i64 {
            return None;
        }
        Some(Token {
            user: CurrentUser {
                id: data.claims.sub,
                email: data.claims.email.clone(),
            },
            claims: data.claims,
        })
    }

    /// The user a token names, or `None` when the token is forged, expired,
    /// not yet valid, issued in the future, for another issuer or audience,
    /// without an id, or signed with anything but HS256 and our key. The deny
    /// cache is not consulted: see [`Sessions::standing`].
    pub fn verify(&self, token: &str) -> Option<CurrentUser> {
        self.decode(token, &self.0.validation).map(|t| t.user)
    }

    /// As [`Sessions::verify`], with the claims.
    pub fn verify_token(&self, token: &str) -> Option<Token> {
        self.decode(token, &self.0.validation)
    }

    /// The access token in `cookies` if it is ours, even when it has
    /// expired: sign-out uses it to find the session it ends.
    pub fn token_ignoring_expiry(&self, cookies: &Cookies) -> Option<Token> {
        let cookie = cookies.get(self.cookie_name())?;
        self.decode(cookie.value(), &self.0.lenient)
    }

    /// What the deny cache says about `token`. Without a cache, or when the
    /// cache fails to answer in time, [`Standing::Good`] (fail open; counted
    /// and logged, see [`crate::deny`]).
    pub async fn standing(&self, token: &Token) -> Standing {
        let Some(cache) = &self.0.deny else {
            return Standing::Good;
        };
        match cache
            .standing(token.user.id, token.claims.jti, token.claims.sid)
            .await
        {
            Ok(standing) => standing,
            Err(e) => {
                metrics::counter!(DENY_CACHE_ERRORS).increment(1);
                tracing::warn!(
                    error = format!("{e:#}"),
                    "deny cache unavailable; failing open"
                );
                Standing::Good
            }
        }
    }

    /// Sets the access cookie (`access`) and, when given, the refresh
    /// cookie. The access cookie lives as long as the refresh token, though
    /// the token inside expires sooner: a client that still holds it knows it
    /// has a session to refresh.
    pub fn set_cookies(&self, cookies: &Cookies, access: String, refresh: Option<String>) {
        let max_age = tower_cookies::cookie::time::Duration::seconds(
            i64::try_from(self.0.refresh_ttl.as_secs()).unwrap_or(i64::MAX),
        );
        cookies.add(
            self.cookie(self.cookie_name(), access, "/")
                .max_age(max_age)
                .build(),
        );
        if let Some(refresh) = refresh {
            cookies.add(
                self.cookie(self.refresh_cookie_name(), refresh, REFRESH_PATH)
                    .max_age(max_age)
                    .build(),
            );
        }
    }

    /// Clears both cookies.
    pub fn clear_cookies(&self, cookies: &Cookies) {
        cookies.remove(self.cookie(self.cookie_name(), String::new(), "/").build());
        cookies.remove(
            self.cookie(self.refresh_cookie_name(), String::new(), REFRESH_PATH)
                .build(),
        );
    }

    fn cookie(
        &self,
        name: &'static str,
        value: String,
        path: &'static str,
    ) -> tower_cookies::cookie::CookieBuilder<'static> {
        Cookie::build((name, value))
            .path(path)
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(self.0.secure_cookie)
    }

    /// The signed-in user of a request, checked against the deny cache.
    async fn user_from(&self, cookies: &Cookies) -> Result<Option<CurrentUser>, ApiError> {
        let Some(token) = cookies
            .get(self.cookie_name())
            .and_then(|c| self.verify_token(c.value()))
        else {
            return Ok(None);
        };
        match self.standing(&token).await {
            Standing::Good => Ok(Some(token.user)),
            Standing::Revoked => Ok(None),
            Standing::Banned => Err(ApiError::Banned),
        }
    }
}

async fn cookies_of<S: Send + Sync>(parts: &mut Parts, state: &S) -> Result<Cookies, ApiError> {
    Cookies::from_request_parts(parts, state)
        .await
        .map_err(|(_, msg)| ApiError::Internal(anyhow::anyhow!("cookie layer missing: {msg}")))
}

/// The signed-in user, if any. Never rejects: a banned user is anonymous.
#[derive(Debug, Clone)]
pub struct MaybeUser(pub Option<CurrentUser>);

impl<S> FromRequestParts<S> for MaybeUser
where
    Sessions: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let cookies = cookies_of(parts, state).await?;
        let user = Sessions::from_ref(state)
            .user_from(&cookies)
            .await
            .unwrap_or(None);
        Ok(MaybeUser(user))
    }
}

/// A signed-in user; the request is refused with 401 otherwise, and with
/// 403 ("This account is banned") when the user is banned.
impl<S> FromRequestParts<S> for CurrentUser
where
    Sessions: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let cookies = cookies_of(parts, state).await?;
        Sessions::from_ref(state)
            .user_from(&cookies)
            .await?
            .ok_or(ApiError::Unauthorized)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(key: &str) -> SessionSettings {
        SessionSettings {
            key: key.into(),
            ttl: Duration::from_secs(60),
            refresh_ttl: Duration::from_secs(600),
            secure_cookie: false,
            redis_url: None,
            cache_prefix: String::new(),
        }
    }

    fn sessions() -> Sessions {
        Sessions::new(&settings(&"k".repeat(32))).expect("sessions")
    }

    fn user() -> CurrentUser {
        CurrentUser {
            id: Uuid::now_v7(),
            email: "a@example.com".into(),
        }
    }

    #[test]
    fn an_issued_token_names_its_user_and_its_session() {
        let s = sessions();
        let sid = Uuid::now_v7();
        let token = s.issue_in(&user(), sid).expect("issue");
        let decoded = s.verify_token(&token).expect("valid");
        assert_eq!(decoded.user.email, "a@example.com");
        assert_eq!(decoded.claims.sid, sid);
        assert_eq!(decoded.claims.iss, ISSUER);
        assert_eq!(decoded.claims.aud, AUDIENCE);
    }

    #[test]
    fn two_tokens_of_one_session_have_their_own_ids() {
        let s = sessions();
        let sid = Uuid::now_v7();
        let a = s
            .verify_token(&s.issue_in(&user(), sid).expect("a"))
            .expect("a");
        let b = s
            .verify_token(&s.issue_in(&user(), sid).expect("b"))
            .expect("b");
        assert_ne!(a.claims.jti, b.claims.jti);
    }

    #[test]
    fn a_token_signed_with_another_key_is_anonymous() {
        let other = Sessions::new(&settings(&"x".repeat(32))).expect("sessions");
        let token = other.issue(&user()).expect("issue");
        assert!(sessions().verify(&token).is_none());
    }
}
