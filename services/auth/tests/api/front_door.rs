//! The front door: sign-in and sign-up limited per account and per client
//! IP in the machine's Redis, 429 with `Retry-After`, the client IP taken
//! from `X-Forwarded-For` only behind a trusted proxy, and sign-in going on
//! when Redis is down.

use std::time::{Duration, Instant};

use auth::config::FrontDoorSettings;
use auth::front_door::FrontDoor;
use common::client_ip::ClientIpSettings;
use common::metrics::scrape;
use common::testing::first_message;
use futures::future::join_all;
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app_with};

const OWNER: &str = "owner@test.com";
const PASSWORD: &str = "the-right-password";

async fn metric(app: &TestApp, name: &str) -> f64 {
    let page = app
        .client
        .send_get("/metrics")
        .await
        .text()
        .await
        .expect("a metrics page");
    scrape::value(&page, name, &[]).unwrap_or(0.0)
}

/// `Retry-After` in whole seconds; panics unless the answer is a 429 in the
/// error format.
async fn retry_after(response: Response) -> u64 {
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let seconds = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After in seconds");
    let body: Value = response.json().await.expect("an error body");
    assert!(
        first_message(&body).starts_with("Too many attempts"),
        "{body}"
    );
    seconds
}

/// A sign-in as if through a proxy that appended `forwarded_for`.
async fn signin_forwarded(app: &TestApp, email: &str, forwarded_for: &str) -> StatusCode {
    app.client
        .request(Method::POST, "/api/users/signin")
        .header("x-forwarded-for", forwarded_for)
        .json(&json!({"email": email, "password": "a-guess"}))
        .send()
        .await
        .expect("signin")
        .status()
}

#[tokio::test]
async fn of_150_wrong_passwords_for_one_account_at_most_100_are_evaluated() {
    let app = spawn_app_with(|s| s.front_door.per_ip.attempts = 1_000).await;
    assert_eq!(
        app.signup(OWNER, PASSWORD).await.status(),
        StatusCode::CREATED
    );
    let verified_before = metric(&app, "auth_password_verifications_total").await;

    // All at once: the slots are taken atomically before any evaluation.
    let guesses: Vec<String> = (0..150).map(|i| format!("wrong-password-{i}")).collect();
    let answers = join_all(guesses.iter().map(|guess| app.signin(OWNER, guess))).await;

    let mut refused = Vec::new();
    let mut invalid = 0;
    for response in answers {
        match response.status() {
            StatusCode::BAD_REQUEST => invalid += 1,
            _ => refused.push(retry_after(response).await),
        }
    }
    let verified = metric(&app, "auth_password_verifications_total").await - verified_before;
    println!(
        "150 wrong passwords: {invalid} evaluated (scrypt verifications: {verified}), {} refused with 429",
        refused.len()
    );
    assert_eq!(invalid, 100);
    assert_eq!(verified, 100.0, "scrypt verifications");
    assert_eq!(refused.len(), 50);
    assert!(
        refused.iter().all(|s| (1..=3600).contains(s)),
        "{refused:?}"
    );
    // The right password is not evaluated either: no oracle for a guesser.
    let response = app.signin(OWNER, PASSWORD).await;
    retry_after(response).await;
    assert_eq!(
        metric(&app, "auth_password_verifications_total").await - verified_before,
        100.0
    );
}

#[tokio::test]
async fn the_owner_signs_in_once_the_window_has_passed() {
    // Long enough for three scrypt checks on a busy machine to fit in it.
    let window = Duration::from_secs(15);
    let app = spawn_app_with(|s| {
        s.front_door.per_account.attempts = 3;
        s.front_door.per_account.window = window;
    })
    .await;
    app.signup(OWNER, PASSWORD).await;
    let failures = join_all((0..3).map(|_| app.signin(OWNER, "wrong-password"))).await;
    assert!(
        failures
            .iter()
            .all(|r| r.status() == StatusCode::BAD_REQUEST)
    );

    let wait = retry_after(app.signin(OWNER, PASSWORD).await).await;

    assert!((1..=window.as_secs()).contains(&wait), "Retry-After {wait}");
    tokio::time::sleep(Duration::from_secs(wait) + Duration::from_millis(100)).await;
    assert_eq!(app.signin(OWNER, PASSWORD).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_correct_password_does_not_count_as_a_failure() {
    let app = spawn_app_with(|s| s.front_door.per_account.attempts = 2).await;
    app.signup(OWNER, PASSWORD).await;

    for _ in 0..5 {
        assert_eq!(app.signin(OWNER, PASSWORD).await.status(), StatusCode::OK);
    }
    assert_eq!(
        app.signin(OWNER, "wrong-password").await.status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(app.signin(OWNER, PASSWORD).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn one_ip_is_limited_across_accounts_for_sign_in_and_sign_up() {
    let app = spawn_app_with(|s| s.front_door.per_ip.attempts = 3).await;
    for i in 0..3 {
        let status = app
            .signin(&format!("user{i}@test.com"), "a-guess")
            .await
            .status();
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }

    let wait = retry_after(app.signin("another@test.com", "a-guess").await).await;
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    retry_after(app.signup("new@test.com", PASSWORD).await).await;
}

#[tokio::test]
async fn a_forwarded_address_is_believed_from_a_trusted_proxy() {
    let app = spawn_app_with(|s| {
        s.front_door.per_ip.attempts = 2;
        s.front_door.client_ip = ClientIpSettings::trusting("127.0.0.1").expect("cidr");
    })
    .await;
    // The client forged the first hop; the proxy appended the second.
    for _ in 0..2 {
        let status = signin_forwarded(&app, OWNER, "203.0.113.5, 198.51.100.1").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }

    let same_client = signin_forwarded(&app, "x@test.com", "203.0.113.6, 198.51.100.1").await;
    let other_client = signin_forwarded(&app, "x@test.com", "198.51.100.2").await;

    assert_eq!(same_client, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(other_client, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_forwarded_address_is_ignored_from_an_untrusted_peer() {
    let app = spawn_app_with(|s| {
        s.front_door.per_ip.attempts = 2;
        s.front_door.client_ip = ClientIpSettings::trusting("10.0.0.0/8").expect("cidr");
    })
    .await;
    for i in 1..=2 {
        let status = signin_forwarded(&app, OWNER, &format!("198.51.100.{i}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }

    let status = signin_forwarded(&app, OWNER, "198.51.100.3").await;

    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "a forged header bought more attempts"
    );
}

#[tokio::test]
async fn sign_in_goes_on_without_limits_when_redis_is_down() {
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let mut settings = FrontDoorSettings::new(format!("redis://127.0.0.1:{closed_port}"), "t");
    settings.per_ip.attempts = 1;
    let app = spawn_app_with(|s| s.front_door = settings.clone()).await;

    assert_eq!(
        app.signup(OWNER, PASSWORD).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(
        app.signin(OWNER, "wrong-password").await.status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(app.signin(OWNER, PASSWORD).await.status(), StatusCode::OK);
    assert!(metric(&app, "auth_rate_limit_unavailable_total").await >= 3.0);

    // Without the hashing around it: the check gives up quickly.
    let door = FrontDoor::new(&settings).expect("a front door");
    let started = Instant::now();
    let attempt = door.admit("198.51.100.1".parse().expect("ip"), OWNER).await;
    let took = started.elapsed();
    println!("a limit check with Redis down took {took:?}");
    assert!(attempt.is_ok());
    assert!(took < Duration::from_secs(2), "{took:?}");
}
