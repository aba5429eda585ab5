//! `/healthz` and `/readyz`: Redis and NATS.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{Harness, closed_redis_url};

#[tokio::test]
async fn healthz_answers_ok() {
    let h = Harness::new().await;
    let service = h.start().await;

    let response = service.get("/healthz").await;

    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn readyz_reports_redis_and_nats_reachable() {
    let h = Harness::new().await;
    let service = h.start().await;

    // NATS connects in the background; until then the service is degraded.
    let ready = common::testing::eventually(std::time::Duration::from_secs(5), || async {
        common::testing::readiness(&service.server.address).await
            == (StatusCode::OK, "ready".to_string())
    })
    .await;

    assert!(ready);
    let body: Value = service.get("/readyz").await.json().await.expect("json");
    assert_eq!(body["checks"]["redis"], "ok");
    assert_eq!(body["checks"]["nats"], "ok");
}

#[tokio::test]
async fn readyz_is_503_naming_redis_when_redis_is_unreachable() {
    let h = Harness::new().await;
    let service = h.start_with_redis(closed_redis_url()).await;

    let response = service.get("/readyz").await;

    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["status"], "unavailable");
    let redis = body["checks"]["redis"].as_str().unwrap_or_default();
    assert!(redis.starts_with("failing"), "{body}");
}
