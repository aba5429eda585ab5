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

    // The services' NATS connections come up in the background; until then
    // the site is ready but degraded.
    let ready = common::testing::eventually(crate::helpers::WAIT, || async {
        common::testing::readiness(&site.url("")).await == (StatusCode::OK, "ready".to_string())
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

#[tokio::test]
async fn with_every_api_down_the_web_service_is_ready_but_degraded_and_renders_pages() {
    // A port nothing listens on: every API is unreachable.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let api: web::config::Url = format!("http://{closed}").parse().expect("url");
    let settings = web::config::Settings {
        process: common::testing::common_settings("").process,
        apis: web::config::ApiUrls::all(api),
        stripe_publishable_key: None,
        tickets_per_page: crate::helpers::PER_PAGE,
        api_timeout: std::time::Duration::from_secs(2),
        mail_dir: None,
    };
    let lifecycle = common::lifecycle::Lifecycle::new();
    let service = web::startup::build(&settings, &lifecycle)
        .await
        .expect("the web service starts");
    let server = common::testing::TestServer::start(service.into_app(), lifecycle).await;

    let ready = reqwest::get(format!("{}/readyz", server.address))
        .await
        .expect("GET /readyz");
    let page = reqwest::get(format!("{}/auth/signin", server.address))
        .await
        .expect("GET a page");

    assert_eq!(ready.status(), StatusCode::OK);
    let body: serde_json::Value = ready.json().await.expect("json");
    assert_eq!(body["status"], "degraded", "{body}");
    assert!(
        body["checks"]["apis"]
            .as_str()
            .is_some_and(|s| s.starts_with("degraded")),
        "{body}"
    );
    // The page is rendered, saying the site cannot reach its services.
    assert_eq!(page.status(), StatusCode::BAD_GATEWAY);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .is_ok_and(|t| t.starts_with("text/html")),
        "an HTML page"
    );
}
