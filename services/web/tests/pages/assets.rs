//! The static files, the headers of the pages, and readiness.

use reqwest::StatusCode;

use crate::helpers::spawn_site;

#[tokio::test]
async fn the_stylesheet_and_scripts_are_served_by_the_service_itself() {
    let site = spawn_site().await;
    let client = reqwest::Client::new();

    for (path, content_type, sample) in [
        ("/static/style.css", "text/css", ":focus-visible"),
        ("/static/countdown.js", "text/javascript", "data-countdown"),
        ("/static/stripe-pay.js", "text/javascript", "createToken"),
        ("/static/icon.svg", "image/svg+xml", "<svg"),
    ] {
        let response = client.get(site.url(path)).send().await.expect("GET");
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let header = response.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .to_string();
        assert!(header.starts_with(content_type), "{path}: {header}");
        let body = response.text().await.expect("body");
        assert!(body.contains(sample), "{path}");
    }
}

#[tokio::test]
async fn pages_are_not_cached_and_allow_no_foreign_script() {
    let site = spawn_site().await;

    let response = reqwest::get(site.url("/")).await.expect("GET");

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .expect("ascii");
    assert!(csp.contains("script-src 'self';"), "{csp}");
    let html = response.text().await.expect("body");
    assert!(html.contains("<link rel=\"stylesheet\" href=\"/static/style.css\">"));
    assert!(html.contains("<meta name=\"viewport\""));
}

#[tokio::test]
async fn readiness_includes_the_apis_the_pages_call() {
    let site = spawn_site().await;

    // The services' NATS connections come up in the background.
    let ready = common::testing::eventually(crate::helpers::WAIT, || async {
        reqwest::get(site.url("/readyz"))
            .await
            .is_ok_and(|r| r.status() == StatusCode::OK)
    })
    .await;

    assert!(ready, "the site became ready");
    let body: serde_json::Value = reqwest::get(site.url("/readyz"))
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    // One origin serves every API here, so the web service checks it once.
    assert_eq!(body["checks"]["apis"], "ok", "{body}");
    assert_eq!(body["checks"]["payments-database"], "ok", "{body}");
}
