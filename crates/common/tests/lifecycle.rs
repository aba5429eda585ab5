//! Graceful shutdown: in-flight requests finish, background tasks drain, and
//! the whole thing is bounded.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use common::lifecycle::Lifecycle;

async fn serve(
    app: Router,
    lifecycle: Lifecycle,
    drain: Duration,
) -> (String, tokio::task::JoinHandle<anyhow::Result<()>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = format!("http://{}", listener.local_addr().expect("addr"));
    let handle = tokio::spawn(lifecycle.serve(listener, app, drain));
    (address, handle)
}

#[tokio::test]
async fn an_in_flight_request_completes_after_shutdown_begins_and_new_ones_are_refused() {
    let app = Router::new().route(
        "/slow",
        get(|| async {
            tokio::time::sleep(Duration::from_millis(500)).await;
            "done"
        }),
    );
    let lifecycle = Lifecycle::new();
    let (address, server) = serve(app, lifecycle.clone(), Duration::from_secs(5)).await;
    let in_flight = tokio::spawn(reqwest::get(format!("{address}/slow")));
    tokio::time::sleep(Duration::from_millis(100)).await;

    lifecycle.shutdown.cancel();

    let response = in_flight
        .await
        .expect("join")
        .expect("the in-flight request is answered");
    assert_eq!(response.text().await.expect("body"), "done");
    server.await.expect("join").expect("serve returns Ok");
    assert!(
        reqwest::get(format!("{address}/slow")).await.is_err(),
        "no longer accepting"
    );
}

#[tokio::test]
async fn background_tasks_see_the_shutdown_and_are_awaited() {
    let lifecycle = Lifecycle::new();
    let drained = Arc::new(AtomicBool::new(false));
    let flag = drained.clone();
    lifecycle.spawn(|token| async move {
        token.cancelled().await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        flag.store(true, Ordering::SeqCst);
    });
    let (_, server) = serve(Router::new(), lifecycle.clone(), Duration::from_secs(5)).await;

    lifecycle.shutdown.cancel();
    server.await.expect("join").expect("serve returns Ok");

    assert!(
        drained.load(Ordering::SeqCst),
        "serve waited for the task to finish draining"
    );
}

#[tokio::test]
async fn a_task_that_never_drains_does_not_hold_the_process_past_the_bound() {
    let lifecycle = Lifecycle::new();
    lifecycle.spawn(|_token| std::future::pending::<()>());
    let (_, server) = serve(Router::new(), lifecycle.clone(), Duration::from_millis(300)).await;
    let start = Instant::now();

    lifecycle.shutdown.cancel();
    server.await.expect("join").expect("serve returns Ok");

    assert!(
        start.elapsed() < Duration::from_secs(2),
        "took {:?}",
        start.elapsed()
    );
}
