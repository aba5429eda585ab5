//! Bans: admins only, audited, sessions revoked, events through the outbox,
//! the deny cache written at once and rebuilt when Redis loses it.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use common::events::{UserBanned, UserUnbanned};
use common::testing::{self, eventually, wait_for_published};

use crate::helpers::{ADMIN, TestApp, spawn_app};
use crate::sessions::{Cookies, signed_up};

async fn post_as(app: &TestApp, access: &str, path: &str, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(app.url(path))
        .header("Cookie", format!("session={access}"))
        .json(body)
        .send()
        .await
        .expect("request")
}

async fn id_of(app: &TestApp, email: &str) -> uuid::Uuid {
    sqlx::query_scalar("SELECT id FROM users WHERE email = $1")
        .bind(email)
        .fetch_one(&app.db.pool)
        .await
        .expect("the user")
}

struct Cast {
    admin: Cookies,
    user: Cookies,
    user_id: uuid::Uuid,
}

async fn cast(app: &TestApp) -> Cast {
    let admin = signed_up(app, ADMIN).await;
    let user = signed_up(app, "user@test.com").await;
    let user_id = id_of(app, "user@test.com").await;
    Cast {
        admin,
        user,
        user_id,
    }
}

async fn current_user(app: &TestApp, access: &str) -> Value {
    let body: Value = reqwest::Client::new()
        .get(app.url("/api/users/currentuser"))
        .header("Cookie", format!("session={access}"))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    body["currentUser"].clone()
}

#[tokio::test]
async fn an_admin_bans_a_user_who_is_then_refused_everywhere_in_auth() {
    let app = spawn_app().await;
    let c = cast(&app).await;

    let response = post_as(
        &app,
        &c.admin.access,
        &format!("/api/users/{}/ban", c.user_id),
        &json!({"reason": "fraudulent listings"}),
    )
    .await;

    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["banned"], true);
    assert_eq!(body["reason"], "fraudulent listings");
    assert_eq!(current_user(&app, &c.user.access).await, Value::Null);
    let refused = post_as(
        &app,
        &c.user.access,
        "/api/users/signout-everywhere",
        &json!({}),
    )
    .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let body: Value = refused.json().await.expect("json");
    assert_eq!(
        body,
        json!({"errors": [{"message": "This account is banned"}]})
    );
    let signin = app.signin("user@test.com", "password").await;
    assert_eq!(
        signin.status(),
        StatusCode::FORBIDDEN,
        "a banned user cannot sign in"
    );
    let refresh = reqwest::Client::new()
        .post(app.url("/api/users/refresh"))
        .header("Cookie", format!("refresh={}", c.user.refresh))
        .send()
        .await
        .expect("request");
    assert_eq!(
        refresh.status(),
        StatusCode::UNAUTHORIZED,
        "the sessions were revoked"
    );
}

#[tokio::test]
async fn a_ban_and_an_unban_are_audited_and_published_with_versions() {
    let app = spawn_app().await;
    let c = cast(&app).await;
    let admin_id = id_of(&app, ADMIN).await;
    let ban = format!("/api/users/{}/ban", c.user_id);
    let unban = format!("/api/users/{}/unban", c.user_id);

    post_as(&app, &c.admin.access, &ban, &json!({"reason": "spam"})).await;
    post_as(&app, &c.admin.access, &ban, &json!({"reason": "again"})).await;
    let lifted = post_as(&app, &c.admin.access, &unban, &json!({"reason": "appeal"})).await;

    assert_eq!(lifted.status(), StatusCode::OK);
    let banned =
        wait_for_published::<UserBanned>(&app.bus, &app.db.pool, 1, Duration::from_secs(10)).await;
    let unbanned =
        wait_for_published::<UserUnbanned>(&app.bus, &app.db.pool, 1, Duration::from_secs(10))
            .await;
    assert_eq!(banned.len(), 1, "banning a banned user publishes nothing");
    assert_eq!(
        banned[0],
        UserBanned {
            id: c.user_id,
            version: 1,
            reason: Some("spam".into())
        }
    );
    assert_eq!(unbanned[0].version, 2);
    let audit: Vec<(String, uuid::Uuid, String, Option<String>)> =
        sqlx::query_as("SELECT action, admin_id, admin_email, reason FROM ban_audit ORDER BY at")
            .fetch_all(&app.db.pool)
            .await
            .expect("audit");
    assert_eq!(
        audit,
        vec![
            ("ban".into(), admin_id, ADMIN.into(), Some("spam".into())),
            (
                "unban".into(),
                admin_id,
                ADMIN.into(),
                Some("appeal".into())
            ),
        ]
    );
    assert_eq!(
        app.signin("user@test.com", "password").await.status(),
        StatusCode::OK,
        "an unbanned user signs in again"
    );
}

#[tokio::test]
async fn only_admins_ban_and_bad_requests_get_the_error_format() {
    let app = spawn_app().await;
    let c = cast(&app).await;
    let admin_id = id_of(&app, ADMIN).await;

    let by_user = post_as(
        &app,
        &c.user.access,
        &format!("/api/users/{admin_id}/ban"),
        &json!({"reason": "x"}),
    )
    .await;
    let anonymous = reqwest::Client::new()
        .post(app.url(&format!("/api/users/{}/ban", c.user_id)))
        .json(&json!({"reason": "x"}))
        .send()
        .await
        .expect("request");
    let no_reason = post_as(
        &app,
        &c.admin.access,
        &format!("/api/users/{}/ban", c.user_id),
        &json!({}),
    )
    .await;
    let unknown = post_as(
        &app,
        &c.admin.access,
        &format!("/api/users/{}/ban", uuid::Uuid::now_v7()),
        &json!({"reason": "x"}),
    )
    .await;
    let themselves = post_as(
        &app,
        &c.admin.access,
        &format!("/api/users/{admin_id}/ban"),
        &json!({"reason": "x"}),
    )
    .await;

    assert_eq!(by_user.status(), StatusCode::FORBIDDEN);
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(no_reason.status(), StatusCode::BAD_REQUEST);
    let body: Value = no_reason.json().await.expect("json");
    assert_eq!(body["errors"][0]["field"], "reason");
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert_eq!(themselves.status(), StatusCode::BAD_REQUEST);
    assert_eq!(current_user(&app, &c.admin.access).await["email"], ADMIN);
}

#[tokio::test]
async fn the_deny_cache_is_rebuilt_when_redis_loses_it() {
    let app = spawn_app().await;
    let c = cast(&app).await;
    post_as(
        &app,
        &c.admin.access,
        &format!("/api/users/{}/ban", c.user_id),
        &json!({"reason": "spam"}),
    )
    .await;
    // A fresh token of the banned user, as if signed before the ban.
    let token = testing::session_cookie(&common::session::CurrentUser {
        id: c.user_id,
        email: "user@test.com".into(),
    });
    let token = token.split_once('=').expect("cookie").1.to_string();
    assert_eq!(
        post_as(&app, &token, "/api/users/signout-everywhere", &json!({}))
            .await
            .status(),
        StatusCode::FORBIDDEN
    );

    // Redis restarts empty: every key of this deployment's cache is gone.
    let client = redis::Client::open(testing::redis_url()).expect("redis url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}:session:*", app.prefix))
        .query_async(&mut conn)
        .await
        .expect("keys");
    assert!(!keys.is_empty());
    let _: () = redis::cmd("DEL")
        .arg(&keys)
        .query_async(&mut conn)
        .await
        .expect("del");
    let started = std::time::Instant::now();

    let refused_again = eventually(Duration::from_secs(5), || async {
        post_as(&app, &token, "/api/users/signout-everywhere", &json!({}))
            .await
            .status()
            == StatusCode::FORBIDDEN
    })
    .await;

    assert!(refused_again, "the ban is back in the cache");
    println!(
        "deny cache rebuilt {:?} after Redis lost it",
        started.elapsed()
    );
}
