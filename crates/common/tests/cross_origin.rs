//! Cross-origin protection on a finished app, served for real: state-changing
//! requests a browser marks as cross-origin (another site, or a sibling
//! such as staging.buytickets.dev) get a 403 in the error format (an HTML
//! page for a navigating browser); same-origin requests, clients that send
//! neither `Origin` nor `Sec-Fetch-Site`, safe methods and the Stripe webhook pass.

use axum::Router;
use axum::routing::{get, post};
use common::health::Readiness;
use common::http::CROSS_ORIGIN_EXEMPT;
use common::lifecycle::{Lifecycle, Service};
use common::testing::{TestServer, first_message};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::Value;

async fn spawn_app() -> TestServer {
    let api = Router::new()
        .route(
            "/api/things",
            post(|| async { "created" }).get(|| async { "listed" }),
        )
        .route(
            "/api/things/1",
            axum::routing::put(|| async { "updated" }).delete(|| async { "deleted" }),
        )
        .route(CROSS_ORIGIN_EXEMPT, post(|| async { "received" }))
        .route("/tickets/new", post(|| async { "listed a ticket" }))
        .route("/", get(|| async { "home" }));
    let app = Service {
        api,
        readiness: Readiness::new(),
    }
    .into_app();
    TestServer::start(app, Lifecycle::new()).await
}

fn request(server: &TestServer, method: Method, path: &str) -> RequestBuilder {
    reqwest::Client::new().request(method, format!("{}{path}", server.address))
}

/// A form post as a browser on `origin` sends it.
fn form_from(server: &TestServer, path: &str, origin: &str, fetch_site: &str) -> RequestBuilder {
    request(server, Method::POST, path)
        .header("origin", origin)
        .header("sec-fetch-site", fetch_site)
        .form(&[("title", "A ticket")])
}

async fn status(request: RequestBuilder) -> StatusCode {
    request
        .send()
        .await
        .expect("the request reaches the app")
        .status()
}

#[tokio::test]
async fn a_cross_site_post_is_refused_with_403_in_the_error_format() {
    let server = spawn_app().await;

    let response = form_from(&server, "/api/things", "https://evil.example", "cross-site")
        .send()
        .await
        .expect("sent");

    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body: Value = response.json().await.expect("an error body");
    assert_eq!(first_message(&body), "Cross-origin request refused");
}

#[tokio::test]
async fn every_state_changing_method_is_refused_cross_site() {
    let server = spawn_app().await;
    for method in [Method::PUT, Method::DELETE, Method::PATCH] {
        let refused = request(&server, method.clone(), "/api/things/1")
            .header("sec-fetch-site", "cross-site")
            .header("origin", "https://evil.example");
        assert_eq!(status(refused).await, StatusCode::FORBIDDEN, "{method}");
    }
}

#[tokio::test]
async fn a_sibling_subdomain_is_another_origin() {
    let server = spawn_app().await;
    // A browser on staging.buytickets.dev posting to buytickets.dev: same
    // site (so SameSite cookies go along), another origin.
    let with_fetch_metadata = request(&server, Method::POST, "/api/things")
        .header("host", "buytickets.dev")
        .header("origin", "https://staging.buytickets.dev")
        .header("sec-fetch-site", "same-site");
    let from_an_old_browser = request(&server, Method::POST, "/api/things")
        .header("host", "buytickets.dev")
        .header("origin", "https://staging.buytickets.dev");
    let from_the_site_itself = request(&server, Method::POST, "/api/things")
        .header("host", "buytickets.dev")
        .header("origin", "https://buytickets.dev");

    assert_eq!(status(with_fetch_metadata).await, StatusCode::FORBIDDEN);
    assert_eq!(status(from_an_old_browser).await, StatusCode::FORBIDDEN);
    assert_eq!(status(from_the_site_itself).await, StatusCode::OK);
}

#[tokio::test]
async fn a_same_origin_form_post_passes() {
    let server = spawn_app().await;
    let origin = server.address.clone();

    let response = form_from(&server, "/tickets/new", &origin, "same-origin")
        .send()
        .await
        .expect("sent");

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.expect("body"), "listed a ticket");
}

#[tokio::test]
async fn a_client_without_origin_headers_passes() {
    let server = spawn_app().await;

    let curl = request(&server, Method::POST, "/api/things").json(&serde_json::json!({}));

    assert_eq!(status(curl).await, StatusCode::OK);
}

#[tokio::test]
async fn reads_pass_from_anywhere() {
    let server = spawn_app().await;

    let read = request(&server, Method::GET, "/api/things")
        .header("origin", "https://evil.example")
        .header("sec-fetch-site", "cross-site");

    assert_eq!(status(read).await, StatusCode::OK);
}

#[tokio::test]
async fn the_stripe_webhook_takes_cross_site_posts() {
    let server = spawn_app().await;

    let webhook = request(&server, Method::POST, CROSS_ORIGIN_EXEMPT)
        .header("origin", "https://stripe.example")
        .header("sec-fetch-site", "cross-site")
        .body("{}");

    assert_eq!(status(webhook).await, StatusCode::OK);
}

#[tokio::test]
async fn a_browser_navigating_gets_an_html_page() {
    let server = spawn_app().await;

    let response = form_from(
        &server,
        "/tickets/new",
        "https://evil.example",
        "cross-site",
    )
    .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
    .send()
    .await
    .expect("sent");

    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let content_type = response.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .to_string();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let html = response.text().await.expect("body");
    assert!(html.contains("sent from another site"), "{html}");
}
