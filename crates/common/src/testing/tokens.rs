//! Access tokens that must not count: every way a session token can be
//! wrong, for tests that check each one is anonymous everywhere.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::session::{AUDIENCE, CurrentUser, ISSUER};
use crate::testing::TEST_SESSION_KEY;

/// Valid claims for `user`, issued now for 10 minutes.
pub fn valid_claims(user: &CurrentUser) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({
        "sub": user.id, "email": user.email, "iss": ISSUER, "aud": AUDIENCE,
        "iat": now, "nbf": now, "exp": now + 600,
        "jti": uuid::Uuid::new_v4(), "sid": uuid::Uuid::now_v7(),
    })
}

/// `claims` signed with `algorithm` and `key`.
pub fn sign(claims: &Value, algorithm: Algorithm, key: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(algorithm),
        claims,
        &EncodingKey::from_secret(key.as_bytes()),
    )
    .expect("encode a token")
}

/// `claims` signed as the services sign them (HS256, the test key).
pub fn sign_valid(claims: &Value) -> String {
    sign(claims, Algorithm::HS256, TEST_SESSION_KEY)
}

fn with(user: &CurrentUser, change: impl FnOnce(&mut Value)) -> String {
    let mut claims = valid_claims(user);
    change(&mut claims);
    sign_valid(&claims)
}

/// Every wrong token for `user`, named: unsigned (`alg: none`), HS512,
/// another key, a tampered payload, expired, not yet valid, issued in the
/// future, another issuer, another audience, without `jti`, without `sid`.
pub fn forged_tokens(user: &CurrentUser) -> Vec<(&'static str, String)> {
    let now = chrono::Utc::now().timestamp();
    let claims = valid_claims(user);
    let encode = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).expect("json"));
    let unsigned = format!(
        "{}.{}.",
        encode(&json!({"alg": "none", "typ": "JWT"})),
        encode(&claims)
    );
    let tampered = {
        let token = sign_valid(&claims);
        let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
        let mut other = claims.clone();
        other["sub"] = json!(uuid::Uuid::now_v7());
        parts[1] = encode(&other);
        parts.join(".")
    };
    vec![
        ("alg none", unsigned),
        ("HS512", sign(&claims, Algorithm::HS512, TEST_SESSION_KEY)),
        (
            "another key",
            sign(
                &claims,
                Algorithm::HS256,
                "another-key-another-key-another-key!",
            ),
        ),
        ("tampered payload", tampered),
        (
            "expired",
            with(user, |c| {
                c["iat"] = json!(now - 3600);
                c["nbf"] = json!(now - 3600);
                c["exp"] = json!(now - 600);
            }),
        ),
        (
            "nbf in the future",
            with(user, |c| c["nbf"] = json!(now + 3600)),
        ),
        (
            "iat in the future",
            with(user, |c| c["iat"] = json!(now + 3600)),
        ),
        (
            "wrong iss",
            with(user, |c| c["iss"] = json!("someone-else")),
        ),
        (
            "wrong aud",
            with(user, |c| c["aud"] = json!("another-site")),
        ),
        (
            "missing jti",
            with(user, |c| {
                c.as_object_mut().map(|o| o.remove("jti"));
            }),
        ),
        (
            "missing sid",
            with(user, |c| {
                c.as_object_mut().map(|o| o.remove("sid"));
            }),
        ),
        (
            "missing nbf",
            with(user, |c| {
                c.as_object_mut().map(|o| o.remove("nbf"));
            }),
        ),
    ]
}
