//! The backstop: reservations past their `expiresAt` that no
//! `expiration.complete` cancelled. Nothing here publishes that event.

use std::time::Duration;

use common::events::OrderCancelled;
use orders::config::SweepSettings;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{NO_SWEEP, User, spawn_app_with};

const SHORT: Duration = Duration::from_secs(1);

/// Past a 1-second reservation.
async fn past_expiry() {
    tokio::time::sleep(Duration::from_millis(1300)).await;
}

#[tokio::test]
async fn the_sweep_cancels_an_overdue_order_whose_expiration_never_came() {
    let sweep = SweepSettings {
        grace: Duration::from_secs(1),
        interval: Duration::from_millis(200),
    };
    let app = spawn_app_with(SHORT, sweep).await;
    let ticket = app.ticket().await;
    let order = app.create_order(&User::new(), ticket).await;

    // Nobody reads the order: only the sweep can cancel it.
    assert!(app.order_reaches(order, "cancelled").await);
    assert_eq!(app.order_row(order).await, ("cancelled".into(), 1));
    let events = app.wait_for_published::<OrderCancelled>(1).await;
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].id, events[0].ticket.id), (order, ticket));
}

#[tokio::test]
async fn the_sweep_leaves_orders_within_the_grace_period_and_paid_orders_alone() {
    let app = spawn_app_with(SHORT, NO_SWEEP).await;
    let waiting = app.create_order(&User::new(), app.ticket().await).await;
    let paid = app.create_order(&User::new(), app.ticket().await).await;
    sqlx::query("UPDATE orders SET status = 'complete' WHERE id = $1")
        .bind(paid)
        .execute(&app.db.pool)
        .await
        .expect("mark paid");
    past_expiry().await;

    let cancelled = orders::expiry::sweep(&app.db.pool, Duration::from_secs(60))
        .await
        .expect("sweep");
    assert_eq!(cancelled, 0, "both are within the grace period");

    let cancelled = orders::expiry::sweep(&app.db.pool, Duration::ZERO)
        .await
        .expect("sweep");
    assert_eq!(cancelled, 1, "only the unpaid order");
    assert_eq!(app.order_row(waiting).await.0, "cancelled");
    assert_eq!(app.order_row(paid).await.0, "complete");
}

#[tokio::test]
async fn concurrent_sweeps_cancel_each_overdue_order_once() {
    let app = spawn_app_with(SHORT, NO_SWEEP).await;
    let mut created = Vec::new();
    for _ in 0..30 {
        created.push(app.create_order(&User::new(), app.ticket().await).await);
    }
    past_expiry().await;

    let pool = &app.db.pool;
    let sweeps =
        futures::future::join_all((0..4).map(|_| orders::expiry::sweep(pool, Duration::ZERO)))
            .await;
    let total: usize = sweeps.into_iter().map(|r| r.expect("sweep")).sum();

    assert_eq!(total, created.len());
    let events = app
        .wait_for_published::<OrderCancelled>(created.len())
        .await;
    assert_eq!(events.len(), created.len(), "one order.cancelled per order");
    for order in created {
        assert_eq!(app.order_row(order).await, ("cancelled".into(), 1));
    }
}

#[tokio::test]
async fn reading_an_overdue_order_shows_it_cancelled_and_frees_the_ticket() {
    let app = spawn_app_with(SHORT, NO_SWEEP).await;
    let buyer = User::new();
    let ticket = app.ticket().await;
    let order = app.create_order(&buyer, ticket).await;
    past_expiry().await;

    let shown: Value = app
        .get(&format!("/api/orders/{order}"), Some(&buyer))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(shown["status"], "cancelled");
    let listed: Value = app
        .get("/api/orders", Some(&buyer))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(listed[0]["status"], "cancelled");
    assert_eq!(app.order_row(order).await, ("cancelled".into(), 1));
    let events = app.wait_for_published::<OrderCancelled>(1).await;
    assert_eq!(events.len(), 1, "cancelled once, with its event");
}

#[tokio::test]
async fn an_overdue_reservation_does_not_stop_another_buyer() {
    let app = spawn_app_with(SHORT, NO_SWEEP).await;
    let ticket = app.ticket().await;
    let first = app.create_order(&User::new(), ticket).await;

    let refused = app.post_order(&User::new(), ticket).await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "still held");
    past_expiry().await;

    let second = app.post_order(&User::new(), ticket).await;
    assert_eq!(second.status(), StatusCode::CREATED);
    assert_eq!(app.order_row(first).await.0, "cancelled");
    let events = app.wait_for_published::<OrderCancelled>(1).await;
    assert_eq!(events[0].id, first);
}
