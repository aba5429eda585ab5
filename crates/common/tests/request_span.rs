//! The request span names the route a request matched, not its raw path:
//! ids in paths would make every request's logs a series of their own.

use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::routing::get;
use common::health::Readiness;
use common::lifecycle::{Lifecycle, Service};
use common::testing::TestServer;

/// Log output captured in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .expect("the log buffer")
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("the log buffer")).into_owned()
    }
}

#[tokio::test]
async fn the_request_span_records_the_matched_route_instead_of_the_path() {
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .init();
    let api = Router::new().route("/api/widgets/{id}", get(|| async { "a widget" }));
    let app = Service {
        api,
        readiness: Readiness::new(),
    }
    .into_app();
    let server = TestServer::start(app, Lifecycle::new()).await;

    reqwest::get(format!("{}/api/widgets/7f1c", server.address))
        .await
        .expect("GET a widget");
    reqwest::get(format!("{}/nowhere-5d2e", server.address))
        .await
        .expect("GET an unknown path");

    let text = logs.text();
    assert!(text.contains("route=/api/widgets/{id}"), "{text}");
    assert!(text.contains("route=unmatched"), "{text}");
    assert!(!text.contains("7f1c"), "{text}");
    assert!(!text.contains("nowhere-5d2e"), "{text}");
}
