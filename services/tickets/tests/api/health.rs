use reqwest::StatusCode;

use crate::helpers::spawn_app;

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
