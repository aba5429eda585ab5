//! Fault drill: PostgreSQL unreachable for 5 s (every connection reset, new
//! ones refused, through a fault proxy). While it is away `/readyz` says not
//! ready and every request answers promptly with 503, `Retry-After` and the
//! error body (never a hang); once it is back the service serves again by
//! itself, without a restart. And PostgreSQL that stops answering: a request
//! on a connection that was just in use (not pinged) answers 503 after the
//! request timeout.

use std::time::{Duration, Instant};

use common::testing::{Fault, first_message};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{
    TestApp, signed_in, spawn_app_behind_proxy, spawn_app_behind_proxy_answering_within,
};

/// How long the database stays away.
const OUTAGE: Duration = Duration::from_secs(5);
/// The longest a request may take to answer while it is away: the pool's
/// acquire timeout (or the hang drill's request timeout) and some slack.
/// Anything longer counts as a hang.
const ANSWER_WITHIN: Duration = Duration::from_secs(7);

/// The request timeout of the hang drill (deployed: `REQUEST_TIMEOUT_SECONDS`).
const HANG_REQUEST_TIMEOUT: Duration = Duration::from_secs(4);

/// Sends `request`, failing the test if no answer comes in time.
async fn answered(request: impl Future<Output = Response>) -> (Response, Duration) {
    let started = Instant::now();
    let response = tokio::time::timeout(ANSWER_WITHIN, request)
        .await
        .expect("an answer, not a hang");
    (response, started.elapsed())
}

async fn assert_unavailable(response: Response) {
    assert_unavailable_saying(
        response,
        "The service is temporarily unavailable; please try again shortly",
    )
    .await;
}

async fn assert_unavailable_saying(response: Response, message: &str) {
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    assert!(
        retry_after.is_some_and(|s| s > 0),
        "Retry-After: {retry_after:?}"
    );
    let body: Value = response.json().await.expect("the error body");
    assert_eq!(first_message(&body), message);
}

async fn post(app: &TestApp, cookie: &str, title: &str) -> Response {
    app.post_ticket(Some(cookie), &json!({"title": title, "price": 20}))
        .await
}

#[tokio::test]
async fn while_the_database_is_unreachable_requests_get_503_with_retry_after_and_the_service_recovers_by_itself()
 {
    let (app, proxy) = spawn_app_behind_proxy().await;
    let (_, cookie) = signed_in();
    app.ready_checks(Duration::from_secs(10)).await;
    let ticket = app.create_ticket(&cookie, "Before", 10.0).await;

    proxy.set(Fault::Down);
    let outage = Instant::now();
    let mut slowest = Duration::ZERO;
    let mut answers = 0;
    while outage.elapsed() < OUTAGE {
        let (ready, took) = answered(app.get("/readyz")).await;
        slowest = slowest.max(took);
        assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE, "not ready");

        let (shown, took) = answered(app.get(&format!("/api/tickets/{ticket}"))).await;
        slowest = slowest.max(took);
        assert_unavailable(shown).await;

        let (created, took) = answered(post(&app, &cookie, "During")).await;
        slowest = slowest.max(took);
        assert_unavailable(created).await;
        answers += 3;
    }
    proxy.set(Fault::Pass);
    let back = Instant::now();

    let mut recovered = None;
    while back.elapsed() < Duration::from_secs(15) {
        let (response, _) = answered(post(&app, &cookie, "After")).await;
        if response.status() == StatusCode::CREATED {
            recovered = Some(back.elapsed());
            break;
        }
        assert_unavailable(response).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let recovered = recovered.expect("the service serves again within 15 s");
    let (ready, _) = answered(app.get("/readyz")).await;
    eprintln!(
        "database outage drill: {answers} requests during a {OUTAGE:?} outage, all 503 + Retry-After, \
         slowest answer {slowest:?}; first 201 {recovered:?} after the database came back"
    );
    assert_eq!(ready.status(), StatusCode::OK, "ready again");
    assert_eq!(app.ticket(ticket).await["title"], "Before");
    assert_eq!(
        app.db
            .count("SELECT count(*) FROM tickets WHERE title = 'During'")
            .await,
        0,
        "nothing written while it was away"
    );
    app.wait_for_published("ticket.created", 2).await;
}

#[tokio::test]
async fn a_database_that_stops_answering_gets_503_within_the_request_timeout_not_a_hang() {
    let (app, proxy) = spawn_app_behind_proxy_answering_within(HANG_REQUEST_TIMEOUT).await;
    let (_, cookie) = signed_in();
    app.ready_checks(Duration::from_secs(10)).await;
    let ticket = app.create_ticket(&cookie, "Before", 10.0).await;

    proxy.set(Fault::Hang);
    let (shown, took) = answered(app.get(&format!("/api/tickets/{ticket}"))).await;
    let (ready, _) = answered(app.get("/readyz")).await;
    proxy.set(Fault::Pass);
    eprintln!("database hang drill: 503 after {took:?}");
    assert!(
        took >= HANG_REQUEST_TIMEOUT,
        "answered after the request timeout: {took:?}"
    );
    assert_unavailable_saying(
        shown,
        "The request took too long to answer; it is still being completed. Retry shortly.",
    )
    .await;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE, "not ready");
    let back = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            if app.get(&format!("/api/tickets/{ticket}")).await.status() == StatusCode::OK {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(back.is_ok(), "serves again once the database answers");
}
