//! `DELETE /api/orders/:id`: a buyer cancels their order.

use common::events::{OrderCancelled, OrderCreated};
use reqwest::StatusCode;
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::{User, first_message, spawn_app};

#[tokio::test]
async fn cancelling_my_order_is_204_and_publishes_order_cancelled_with_version_1() {
    let app = spawn_app().await;
    let buyer = User::new();
    let ticket = app.ticket().await;
    let order = app.create_order(&buyer, ticket).await;

    let response = app
        .delete(&format!("/api/orders/{order}"), Some(&buyer))
        .await;

    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.order_row(order).await, ("cancelled".into(), 1));
    let events = app.wait_for_published::<OrderCancelled>(1).await;
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].id, events[0].version, events[0].ticket.id),
        (order, 1, ticket)
    );
    let shown: Value = app
        .get(&format!("/api/orders/{order}"), Some(&buyer))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(shown["status"], "cancelled");
    assert_eq!(shown["version"], 1);
}

#[tokio::test]
async fn cancelling_an_already_cancelled_order_is_204_without_a_new_event() {
    let app = spawn_app().await;
    let buyer = User::new();
    let order = app.create_order(&buyer, app.ticket().await).await;
    let path = format!("/api/orders/{order}");
    app.delete(&path, Some(&buyer)).await;

    let response = app.delete(&path, Some(&buyer)).await;

    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.order_row(order).await, ("cancelled".into(), 1));
    assert_eq!(app.wait_for_published::<OrderCancelled>(1).await.len(), 1);
    assert_eq!(
        app.count("SELECT count(*) FROM outbox WHERE subject = 'order.cancelled'")
            .await,
        1
    );
}

#[tokio::test]
async fn cancelling_a_completed_order_is_refused() {
    let app = spawn_app().await;
    let buyer = User::new();
    let order = app.create_order(&buyer, app.ticket().await).await;
    app.force_status(order, "complete").await;

    let response = app
        .delete(&format!("/api/orders/{order}"), Some(&buyer))
        .await;

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.expect("json");
    assert_eq!(first_message(&body), "Cannot cancel a completed order");
    assert_eq!(app.order_row(order).await.0, "complete");
}

#[tokio::test]
async fn cancelling_another_buyers_order_is_403_and_changes_nothing() {
    let app = spawn_app().await;
    let order = app.create_order(&User::new(), app.ticket().await).await;

    let response = app
        .delete(&format!("/api/orders/{order}"), Some(&User::new()))
        .await;

    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.order_row(order).await, ("created".into(), 0));
}

#[tokio::test]
async fn cancelling_an_unknown_or_malformed_order_id_is_404() {
    let app = spawn_app().await;
    let me = User::new();

    let unknown = app
        .delete(&format!("/api/orders/{}", Uuid::now_v7()), Some(&me))
        .await;
    let malformed = app.delete("/api/orders/42", Some(&me)).await;

    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert_eq!(malformed.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_cancelled_order_frees_its_ticket_for_another_buyer() {
    let app = spawn_app().await;
    let first_buyer = User::new();
    let ticket = app.ticket().await;
    let order = app.create_order(&first_buyer, ticket).await;
    app.delete(&format!("/api/orders/{order}"), Some(&first_buyer))
        .await;

    let response = app.post_order(&User::new(), ticket).await;

    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(app.wait_for_published::<OrderCreated>(2).await.len(), 2);
}
