//! `/healthz` and `/readyz`.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::spawn_app;

#[tokio::test]
async fn healthz_answers_ok() {
    let app = spawn_app().await;

    let response = app.get("/healthz").await;

    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn readyz_reports_the_payments_database_and_nats_reachable() {
    let app = spawn_app().await;

    let ready = common::testing::eventually(std::time::Duration::from_secs(5), || async {
        app.get("/readyz").await.status() == StatusCode::OK
    })
    .await;

    assert!(ready);
    let body: Value = app.get("/readyz").await.json().await.expect("json");
    assert_eq!(body["checks"]["payments-database"], "ok");
    assert_eq!(body["checks"]["nats"], "ok");
}
