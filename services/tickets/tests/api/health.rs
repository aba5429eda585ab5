use std::time::Duration;

use common::testing::{NatsServer, eventually, readiness};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{signed_in, spawn_app, spawn_app_on};

#[tokio::test]
async fn healthz_answers_ok() {
    let app = spawn_app().await;

    let response = app.get("/healthz").await;

    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn readyz_reports_the_database_and_nats_reachable() {
    let app = spawn_app().await;

    let checks = app.ready_checks(std::time::Duration::from_secs(5)).await;
    assert_eq!(checks["tickets-database"], "ok");
    assert_eq!(checks["nats"], "ok");
}

#[tokio::test]
async fn with_nats_down_it_stays_ready_but_degraded_and_publishes_once_nats_is_back() {
    let mut nats = NatsServer::start();
    let app = spawn_app_on(&nats.url()).await;
    app.ready_checks(Duration::from_secs(10)).await;

    nats.stop();

    let degraded = eventually(Duration::from_secs(10), || async {
        readiness(&app.address).await == (StatusCode::OK, "degraded".to_string())
    })
    .await;
    assert!(degraded, "/readyz said 200 degraded while NATS was down");
    let body: Value = app.get("/readyz").await.json().await.expect("json");
    assert_eq!(body["checks"]["tickets-database"], "ok", "{body}");
    assert!(
        body["checks"]["nats"]
            .as_str()
            .is_some_and(|s| s.starts_with("degraded")),
        "{body}"
    );
    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    assert_eq!(
        common::metrics::scrape::value(&metrics, "dependency_up", &[("name", "nats")]),
        Some(0.0),
        "{metrics}"
    );
    let (_, cookie) = signed_in();
    let created = app
        .post_ticket(Some(&cookie), &json!({"title": "Concert", "price": 20}))
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let id = created.json::<Value>().await.expect("json")["id"].clone();

    nats.resume();
    let resumed = std::time::Instant::now();

    let published = eventually(Duration::from_secs(30), || async {
        app.published("ticket.created")
            .await
            .iter()
            .any(|event| event["id"] == id)
    })
    .await;
    assert!(published, "ticket.created went out once NATS was back");
    eprintln!(
        "ticket.created published {:?} after NATS came back",
        resumed.elapsed()
    );
    app.ready_checks(Duration::from_secs(10)).await;
}
