//! `Idempotency-Key` on POST requests, against a real database: replay,
//! mismatch, in-flight, expiry, scope, and what is not stored.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use common::idempotency::{Idempotency, REPLAYED_HEADER};
use common::lifecycle::Lifecycle;
use common::testing::{TestDatabase, TestServer, TestUser, session_settings};
use serde_json::{Value, json};
use sqlx::migrate::Migrator;
use tower_cookies::{Cookie, Cookies};

#[derive(Clone)]
struct Counter {
    runs: Arc<AtomicUsize>,
}

/// Counts its runs, sleeps `sleepMs`, fails with 500 when `fail` is true,
/// and sets a cookie: what a write handler does, observable.
async fn create(
    State(counter): State<Counter>,
    cookies: Cookies,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let run = counter.runs.fetch_add(1, Ordering::SeqCst) + 1;
    if let Some(ms) = body["sleepMs"].as_u64() {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    if body["fail"] == true {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"errors": [{"message": "Something went wrong"}]})),
        );
    }
    cookies.add(Cookie::new("made", run.to_string()));
    (StatusCode::CREATED, Json(json!({"run": run})))
}

struct App {
    server: TestServer,
    db: TestDatabase,
    runs: Arc<AtomicUsize>,
    http: reqwest::Client,
}

impl App {
    async fn start() -> App {
        let db = TestDatabase::create(&Migrator::DEFAULT).await;
        let runs = Arc::new(AtomicUsize::new(0));
        let routes = Router::new()
            .route("/things", post(create))
            .with_state(Counter { runs: runs.clone() });
        let keys = Idempotency::new(
            db.pool.clone(),
            common::session::Sessions::new(&session_settings()).expect("sessions"),
        );
        let app = common::http::finish(keys.protect(routes));
        App {
            server: TestServer::start(app, Lifecycle::new()).await,
            db,
            runs,
            http: reqwest::Client::new(),
        }
    }

    async fn post(
        &self,
        key: Option<&str>,
        user: Option<&TestUser>,
        body: Value,
    ) -> reqwest::Response {
        let mut request = self
            .http
            .post(format!("{}/things", self.server.address))
            .json(&body);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        if let Some(user) = user {
            request = request.header("Cookie", &user.cookie);
        }
        request.send().await.expect("request")
    }

    fn runs(&self) -> usize {
        self.runs.load(Ordering::SeqCst)
    }

    async fn age_keys(&self, hours: i32) {
        sqlx::query("UPDATE idempotency_keys SET created_at = now() - make_interval(hours => $1)")
            .bind(hours)
            .execute(&self.db.pool)
            .await
            .expect("age keys");
    }
}

fn key() -> String {
    uuid::Uuid::new_v4().to_string()
}

async fn json(response: reqwest::Response) -> Value {
    response.json().await.expect("json body")
}

#[tokio::test]
async fn a_retry_with_the_same_key_and_body_replays_the_first_response() {
    let app = App::start().await;
    let user = TestUser::new();
    let key = key();

    let first = app
        .post(Some(&key), Some(&user), json!({"a": 1, "b": 2}))
        .await;
    // The same body, serialised with its keys in another order.
    let retry = app
        .post(Some(&key), Some(&user), json!({"b": 2, "a": 1}))
        .await;

    assert_eq!(first.status(), StatusCode::CREATED);
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert!(first.headers().get(REPLAYED_HEADER).is_none());
    assert_eq!(retry.headers()[REPLAYED_HEADER], "true");
    let cookie = |r: &reqwest::Response| r.headers().get("set-cookie").cloned();
    assert_eq!(cookie(&retry), cookie(&first), "Set-Cookie replayed too");
    assert!(cookie(&first).is_some_and(|c| c.to_str().unwrap_or_default().starts_with("made=1")));
    assert_eq!(retry.headers()["content-type"], "application/json");
    assert_eq!(json(first).await, json(retry).await);
    assert_eq!(app.runs(), 1, "the retry ran nothing");
}

#[tokio::test]
async fn the_same_key_with_another_body_is_a_422() {
    let app = App::start().await;
    let user = TestUser::new();
    let key = key();
    app.post(Some(&key), Some(&user), json!({"a": 1})).await;

    let other = app.post(Some(&key), Some(&user), json!({"a": 2})).await;

    assert_eq!(other.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = json(other).await;
    assert_eq!(
        body["errors"][0]["message"],
        "This Idempotency-Key was already used with a different request"
    );
    assert_eq!(app.runs(), 1);
}

#[tokio::test]
async fn a_key_whose_first_request_is_still_running_is_a_409_then_replays() {
    let app = Arc::new(App::start().await);
    let user = Arc::new(TestUser::new());
    let key = key();
    let body = json!({"sleepMs": 800});
    let first = {
        let (app, user, key, body) = (app.clone(), user.clone(), key.clone(), body.clone());
        tokio::spawn(async move { app.post(Some(&key), Some(&user), body).await.status() })
    };
    let started =
        common::testing::eventually(Duration::from_secs(5), || async { app.runs() == 1 }).await;
    assert!(started);

    let concurrent = app.post(Some(&key), Some(&user), body.clone()).await;

    assert_eq!(concurrent.status(), StatusCode::CONFLICT);
    assert_eq!(concurrent.headers()["retry-after"], "1");
    assert!(json(concurrent).await["errors"][0]["message"].is_string());
    assert_eq!(first.await.expect("first request"), StatusCode::CREATED);
    let after = app.post(Some(&key), Some(&user), body).await;
    assert_eq!(after.status(), StatusCode::CREATED);
    assert_eq!(after.headers()[REPLAYED_HEADER], "true");
    assert_eq!(app.runs(), 1);
}

#[tokio::test]
async fn a_key_older_than_a_day_is_new_again_and_the_cleanup_deletes_old_keys() {
    let app = App::start().await;
    let user = TestUser::new();
    let key = key();
    app.post(Some(&key), Some(&user), json!({"a": 1})).await;
    app.age_keys(25).await;

    let later = app.post(Some(&key), Some(&user), json!({"a": 1})).await;

    assert_eq!(later.status(), StatusCode::CREATED);
    assert!(later.headers().get(REPLAYED_HEADER).is_none());
    assert_eq!(app.runs(), 2);
    assert_eq!(
        common::idempotency::delete_expired(&app.db.pool)
            .await
            .expect("cleanup"),
        0,
        "the renewed key is young"
    );
    app.age_keys(25).await;
    assert_eq!(
        common::idempotency::delete_expired(&app.db.pool)
            .await
            .expect("cleanup"),
        1
    );
}

#[tokio::test]
async fn a_key_left_in_flight_by_a_dead_process_is_taken_over_by_a_retry() {
    let app = App::start().await;
    let user = TestUser::new();
    let key = key();
    // What a process that died mid-request leaves: a key with no answer.
    sqlx::query(
        "INSERT INTO idempotency_keys (scope, method, path, key, request_hash, created_at) \
         VALUES ($1, 'POST', '/things', $2, '\\x00', now() - interval '3 minutes')",
    )
    .bind(format!("user:{}", user.id))
    .bind(&key)
    .execute(&app.db.pool)
    .await
    .expect("a stale key");

    let retry = app.post(Some(&key), Some(&user), json!({"a": 1})).await;

    assert_eq!(retry.status(), StatusCode::CREATED);
    assert_eq!(app.runs(), 1);
}

#[tokio::test]
async fn keys_are_scoped_to_the_user() {
    let app = App::start().await;
    let key = key();

    let alice = app
        .post(Some(&key), Some(&TestUser::new()), json!({"a": 1}))
        .await;
    let bob = app
        .post(Some(&key), Some(&TestUser::new()), json!({"a": 1}))
        .await;
    let anonymous = app.post(Some(&key), None, json!({"a": 1})).await;

    for response in [&alice, &bob, &anonymous] {
        assert_eq!(response.status(), StatusCode::CREATED);
        assert!(response.headers().get(REPLAYED_HEADER).is_none());
    }
    assert_eq!(app.runs(), 3);
}

#[tokio::test]
async fn an_anonymous_client_cannot_pick_another_scope_with_a_forged_forwarded_header() {
    // No proxy is trusted: the peer address is the client, whatever
    // `X-Forwarded-For` claims.
    let app = App::start().await;
    let key = key();
    let post = |forged: &'static str| {
        app.http
            .post(format!("{}/things", app.server.address))
            .header("Idempotency-Key", key.as_str())
            .header("x-forwarded-for", forged)
            .json(&json!({"a": 1}))
            .send()
    };

    let first = post("203.0.113.1").await.expect("request");
    let second = post("198.51.100.7").await.expect("request");

    assert_eq!(first.status(), StatusCode::CREATED);
    assert_eq!(second.status(), StatusCode::CREATED);
    assert_eq!(
        second.headers()[REPLAYED_HEADER],
        "true",
        "one scope: the peer's"
    );
    assert_eq!(app.runs(), 1);
}

#[tokio::test]
async fn a_server_error_is_not_stored_so_a_retry_runs_again() {
    let app = App::start().await;
    let user = TestUser::new();
    let key = key();

    let failed = app
        .post(Some(&key), Some(&user), json!({"fail": true}))
        .await;
    let retry = app
        .post(Some(&key), Some(&user), json!({"fail": true}))
        .await;

    assert_eq!(failed.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(retry.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(retry.headers().get(REPLAYED_HEADER).is_none());
    assert_eq!(app.runs(), 2);
    assert_eq!(
        app.db.count("SELECT count(*) FROM idempotency_keys").await,
        0
    );
}

#[tokio::test]
async fn requests_without_a_key_run_every_time_and_a_malformed_key_is_a_400() {
    let app = App::start().await;
    let user = TestUser::new();

    app.post(None, Some(&user), json!({"a": 1})).await;
    app.post(None, Some(&user), json!({"a": 1})).await;
    let long = "k".repeat(256);
    let malformed = app.post(Some(&long), Some(&user), json!({"a": 1})).await;

    assert_eq!(app.runs(), 2);
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    assert!(
        json(malformed).await["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Idempotency-Key"))
    );
}
