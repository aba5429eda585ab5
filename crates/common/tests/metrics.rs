//! `GET /metrics` on a finished app: the Prometheus text format, request
//! counters labelled by the matched route, and the database samplers.

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use common::health::Readiness;
use common::lifecycle::{Lifecycle, Service};
use common::metrics::scrape;
use common::testing::{TestDatabase, TestServer, eventually};

async fn spawn_app(api: Router) -> TestServer {
    let app = Service {
        api,
        readiness: Readiness::new(),
    }
    .into_app();
    TestServer::start(app, Lifecycle::new()).await
}

async fn metrics_page(address: &str) -> String {
    reqwest::get(format!("{address}/metrics"))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("a text body")
}

fn requests(page: &str, labels: &[(&str, &str)]) -> f64 {
    scrape::value(page, "http_requests_total", labels).unwrap_or(0.0)
}

fn timed(page: &str, labels: &[(&str, &str)]) -> f64 {
    scrape::value(page, "http_request_duration_seconds_count", labels).unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_answers_in_the_prometheus_text_format() {
    let server = spawn_app(Router::new()).await;

    let response = reqwest::get(format!("{}/metrics", server.address))
        .await
        .expect("GET /metrics");

    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .expect("an ASCII content type");
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    // The scrape itself was counted by the request before it.
    reqwest::get(format!("{}/healthz", server.address))
        .await
        .expect("GET /healthz");
    let page = metrics_page(&server.address).await;
    assert!(
        page.contains("# TYPE http_requests_total counter"),
        "{page}"
    );
    assert!(
        page.contains("# TYPE http_request_duration_seconds histogram"),
        "{page}"
    );
    assert_eq!(
        requests(&page, &[("route", "/healthz"), ("status", "200")]),
        1.0
    );
}

#[tokio::test]
async fn a_request_moves_the_counter_of_its_matched_route() {
    let api = Router::new().route("/api/widgets/{id}", get(|| async { "a widget" }));
    let server = spawn_app(api).await;
    let route = [
        ("method", "GET"),
        ("route", "/api/widgets/{id}"),
        ("status", "200"),
    ];
    let page = metrics_page(&server.address).await;
    let before = requests(&page, &route);
    let timed_before = timed(&page, &route);

    reqwest::get(format!("{}/api/widgets/42", server.address))
        .await
        .expect("GET a widget");
    reqwest::get(format!("{}/api/widgets/43", server.address))
        .await
        .expect("GET a widget");

    let page = metrics_page(&server.address).await;
    assert_eq!(requests(&page, &route) - before, 2.0, "{page}");
    assert!(!page.contains("/api/widgets/42"), "{page}");
    assert_eq!(timed(&page, &route) - timed_before, 2.0, "{page}");
}

#[tokio::test]
async fn a_request_that_matches_no_route_is_counted_as_unmatched() {
    let server = spawn_app(Router::new()).await;
    let unmatched = [("route", "unmatched"), ("status", "404")];
    let before = requests(&metrics_page(&server.address).await, &unmatched);

    let response = reqwest::get(format!("{}/no/such/page-9f3c", server.address))
        .await
        .expect("GET an unknown path");

    assert_eq!(response.status(), 404);
    let page = metrics_page(&server.address).await;
    assert_eq!(requests(&page, &unmatched) - before, 1.0, "{page}");
    assert!(!page.contains("page-9f3c"), "{page}");
}

#[tokio::test]
async fn the_samplers_report_the_outbox_backlog_and_the_pool_in_use() {
    let db = TestDatabase::create_empty().await;
    common::db::migrate(&db.pool, &sqlx::migrate::Migrator::DEFAULT)
        .await
        .expect("migrations apply");
    for age in ["30 seconds", "2 seconds"] {
        sqlx::query(
            "INSERT INTO outbox (id, subject, payload, created_at) \
             VALUES (gen_random_uuid(), 'widget.created', '{}', now() - $1::interval)",
        )
        .bind(age)
        .execute(&db.pool)
        .await
        .expect("an outbox row");
    }
    sqlx::query(
        "INSERT INTO outbox (id, subject, payload, created_at, published_at) \
         VALUES (gen_random_uuid(), 'widget.created', '{}', now() - interval '1 hour', now())",
    )
    .execute(&db.pool)
    .await
    .expect("a published outbox row");
    let held = db.pool.acquire().await.expect("a connection");
    // The migrations' connection goes back to the pool in a task of its own:
    // the samplers must find only `held` in use.
    let others_idle = eventually(Duration::from_secs(5), || async {
        db.pool.size() as usize - db.pool.num_idle() == 1
    })
    .await;
    assert!(others_idle, "only the held connection is in use");
    let server = spawn_app(Router::new()).await;
    let service = [("service", "sampler-test")];

    common::metrics::spawn_samplers(&server.lifecycle, "sampler-test", db.pool.clone());

    let sampled = eventually(Duration::from_secs(5), || async {
        let page = metrics_page(&server.address).await;
        scrape::value(&page, "outbox_pending_rows", &service).is_some()
    })
    .await;
    assert!(sampled, "the samplers reported nothing");
    let page = metrics_page(&server.address).await;
    assert_eq!(
        scrape::value(&page, "outbox_pending_rows", &service),
        Some(2.0)
    );
    let age = scrape::value(&page, "outbox_oldest_pending_age_seconds", &service)
        .expect("the oldest pending age");
    assert!((30.0..60.0).contains(&age), "oldest pending age {age}");
    assert_eq!(
        scrape::value(
            &page,
            "db_pool_connections",
            &[("service", "sampler-test"), ("state", "in_use")]
        ),
        Some(1.0),
        "{page}"
    );
    drop(held);
}
