//! `GET /metrics` of the suite: every service's metrics on one page, and the
//! counters moving when a reservation's events flow and when it expires.

use std::time::Duration;

use common::metrics::scrape;
use common::testing;
use reqwest::StatusCode;

use crate::helpers::{Suite, list_ticket, reserve, signed_up, wait_for};

async fn metrics_page(suite: &Suite) -> String {
    let response = reqwest::get(suite.url("/metrics"))
        .await
        .expect("GET /metrics");
    assert_eq!(response.status(), StatusCode::OK);
    response.text().await.expect("a text body")
}

fn value(page: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape::value(page, name, labels).unwrap_or(0.0)
}

/// Waits until every `(name, labels)` has risen by at least one from `before`
/// (10 s at most), then waits a moment more, so that a second increment
/// would show; the page after that.
async fn after_each_rose(
    suite: &Suite,
    before: &str,
    series: &[(&str, &[(&str, &str)])],
) -> String {
    let rose = testing::eventually(Duration::from_secs(10), || async {
        let page = metrics_page(suite).await;
        series
            .iter()
            .all(|(name, labels)| value(&page, name, labels) > value(before, name, labels))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let page = metrics_page(suite).await;
    assert!(rose, "the counters never moved:\n{page}");
    page
}

#[tokio::test]
async fn one_reservation_is_published_once_by_orders_and_applied_once_by_tickets() {
    let suite = Suite::start(&[]).await;
    let seller = signed_up(&suite, "seller@example.com").await;
    let buyer = signed_up(&suite, "buyer@example.com").await;
    let ticket_id = list_ticket(&suite, &seller, 20.0).await;
    let published = [("service", "orders"), ("subject", "order.created")];
    let applied = [
        ("service", "tickets"),
        ("subject", "order.created"),
        ("outcome", "applied"),
    ];
    let before = metrics_page(&suite).await;

    reserve(&suite, &buyer, &ticket_id).await;

    let page = after_each_rose(
        &suite,
        &before,
        &[
            ("events_published_total", &published),
            ("events_handled_total", &applied),
        ],
    )
    .await;
    let rise = |name, labels| value(&page, name, labels) - value(&before, name, labels);
    assert_eq!(
        rise("events_published_total", &published[..]),
        1.0,
        "{page}"
    );
    assert_eq!(rise("events_handled_total", &applied[..]), 1.0, "{page}");
}

#[tokio::test]
async fn the_suite_serves_the_http_and_database_metrics_of_every_service() {
    let suite = Suite::start(&[]).await;
    let seller = signed_up(&suite, "seller@example.com").await;

    list_ticket(&suite, &seller, 20.0).await;

    let created = [
        ("method", "POST"),
        ("route", "/api/tickets"),
        ("status", "201"),
    ];
    let signed = [("route", "/api/users/signup"), ("status", "201")];
    // The samplers' first pass runs at start; allow it a few seconds.
    let sampled = testing::eventually(Duration::from_secs(10), || async {
        let page = metrics_page(&suite).await;
        ["auth", "tickets", "orders", "payments"]
            .iter()
            .all(|service| {
                scrape::value(&page, "outbox_pending_rows", &[("service", service)]).is_some()
            })
    })
    .await;
    let page = metrics_page(&suite).await;
    assert!(sampled, "not every service's outbox was sampled:\n{page}");
    assert_eq!(value(&page, "http_requests_total", &created), 1.0, "{page}");
    assert_eq!(value(&page, "http_requests_total", &signed), 1.0, "{page}");
    for service in ["auth", "tickets", "orders", "payments"] {
        let pool = value(&page, "db_pool_connections", &[("service", service)]);
        assert!(
            pool >= 1.0,
            "{service} pool has {pool} connections:\n{page}"
        );
    }
    // One registry for the process: each metric is described once.
    assert_eq!(
        page.matches("# TYPE http_requests_total counter").count(),
        1,
        "{page}"
    );
}

#[tokio::test]
async fn an_expired_reservation_counts_one_fired_job_and_its_lateness() {
    let suite = Suite::start(&[("ORDER_EXPIRATION_SECONDS", "1")]).await;
    let seller = signed_up(&suite, "seller@example.com").await;
    let buyer = signed_up(&suite, "buyer@example.com").await;
    let ticket_id = list_ticket(&suite, &seller, 20.0).await;
    let before = metrics_page(&suite).await;

    let order = reserve(&suite, &buyer, &ticket_id).await;

    let order_id = order["id"].as_str().expect("an order id");
    wait_for(&buyer, suite.url(&format!("/api/orders/{order_id}")), |o| {
        o["status"] == "cancelled"
    })
    .await;
    let page = after_each_rose(&suite, &before, &[("expiration_jobs_fired_total", &[])]).await;
    let rise = |name| value(&page, name, &[]) - value(&before, name, &[]);
    assert_eq!(rise("expiration_jobs_fired_total"), 1.0, "{page}");
    assert_eq!(rise("expiration_lateness_seconds_count"), 1.0, "{page}");
    let lateness = rise("expiration_lateness_seconds_sum");
    assert!(
        (0.0..2.0).contains(&lateness),
        "the job fired {lateness} s after the order expired"
    );
}

/// The metric names an expression of the dashboard reads: its identifiers
/// that are neither functions, nor label names inside `{…}` or `by (…)`, nor
/// Grafana variables, without the `_bucket`/`_sum`/`_count` of histograms.
fn metric_names(expr: &str) -> Vec<String> {
    const FUNCTIONS: [&str; 6] = ["sum", "max", "rate", "increase", "histogram_quantile", "by"];
    let mut names = Vec::new();
    let mut depth_braces = 0;
    let mut after_by = false;
    let mut word = String::new();
    for c in expr.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_alphanumeric() || c == '_' || c == '$' {
            word.push(c);
            continue;
        }
        let is_function = FUNCTIONS.contains(&word.as_str());
        if !word.is_empty()
            && depth_braces == 0
            && !after_by
            && !is_function
            && !word.starts_with('$')
            && !word.starts_with(|ch: char| ch.is_ascii_digit())
        {
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| word.strip_suffix(suffix))
                .unwrap_or(&word);
            names.push(base.to_owned());
        }
        if word == "by" {
            after_by = true;
        }
        word.clear();
        match c {
            '{' | '[' => depth_braces += 1,
            '}' | ']' => depth_braces -= 1,
            ')' if after_by => after_by = false,
            _ => {}
        }
    }
    names
}

#[test]
fn every_metric_the_dashboard_reads_is_documented_in_the_readme() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{root}/infra/grafana/buytickets-dashboard.json"))
            .expect("the dashboard"),
    )
    .expect("the dashboard is JSON");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).expect("the README");
    let exprs: Vec<&str> = dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|panel| panel["targets"].as_array().expect("targets"))
        .map(|target| target["expr"].as_str().expect("an expr"))
        .collect();

    let names: Vec<String> = exprs.iter().flat_map(|e| metric_names(e)).collect();

    assert!(names.len() >= exprs.len(), "{names:?}");
    for name in names {
        assert!(
            readme.contains(&format!("| `{name}` |")),
            "the dashboard reads {name}, which README.md's Metrics table does not list"
        );
    }
}

#[test]
fn metric_names_skips_functions_labels_and_variables() {
    let expr = "histogram_quantile(0.99, sum by (le, route) \
                (rate(http_request_duration_seconds_bucket{status=~\"5..\"}[$__rate_interval])))";
    assert_eq!(metric_names(expr), ["http_request_duration_seconds"]);
    assert_eq!(
        metric_names("sum(rate(a_total[1m])) / sum(rate(b_total[1m]))"),
        ["a_total", "b_total"]
    );
}
