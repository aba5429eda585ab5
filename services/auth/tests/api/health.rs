use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::spawn_app;

#[tokio::test]
async fn healthz_answers_ok() {
    let app = spawn_app().await;

    let response = app
        .client
        .request(reqwest::Method::GET, "/healthz")
        .send()
        .await
        .expect("request");

    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn readyz_reports_the_database_and_nats_reachable() {
    let app = spawn_app().await;

    let checks = app.ready_checks(std::time::Duration::from_secs(5)).await;
    assert_eq!(checks["auth-database"], "ok");
    assert_eq!(checks["nats"], "ok");
}

#[tokio::test]
async fn readyz_is_503_when_the_database_is_gone() {
    let app = spawn_app().await;
    app.db.pool.close().await;
    let admin = common::testing::admin_database_url();
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
        .await
        .expect("admin");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        r#"DROP DATABASE "{}" WITH (FORCE)"#,
        app.db.name
    )))
    .execute(&mut conn)
    .await
    .expect("drop");

    let response = app
        .client
        .request(reqwest::Method::GET, "/readyz")
        .send()
        .await
        .expect("request");

    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = response.json().await.expect("json");
    assert!(
        body["checks"]["auth-database"]
            .as_str()
            .is_some_and(|s| s.starts_with("failing"))
    );
}
