use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{signed_in, spawn_app};

#[tokio::test]
async fn anyone_can_see_a_ticket_by_its_id() {
    let app = spawn_app().await;
    let (user, cookie) = signed_in();
    let id = app.create_ticket(&cookie, "Concert", 20.0).await;

    let response = app.get(&format!("/api/tickets/{id}")).await;

    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        body,
        json!({"id": id, "title": "Concert", "price": 20.0, "userId": user.id, "version": 0, "status": "available"})
    );
}

#[tokio::test]
async fn a_reserved_ticket_shows_its_order_id() {
    let app = spawn_app().await;
    let (_, cookie) = signed_in();
    let id = app.create_ticket(&cookie, "Concert", 20.0).await;
    let order = Uuid::now_v7();
    sqlx::query("UPDATE tickets SET order_id = $2 WHERE id = $1")
        .bind(id)
        .bind(order)
        .execute(&app.db.pool)
        .await
        .expect("reserve");

    let body = app.ticket(id).await;

    assert_eq!(body["orderId"], json!(order));
}

#[tokio::test]
async fn an_unknown_id_is_404() {
    let app = spawn_app().await;

    let response = app.get(&format!("/api/tickets/{}", Uuid::now_v7())).await;

    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body, json!({"errors": [{"message": "Not found"}]}));
}

#[tokio::test]
async fn a_malformed_id_is_404() {
    let app = spawn_app().await;

    let response = app.get("/api/tickets/not-a-uuid").await;

    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body, json!({"errors": [{"message": "Not found"}]}));
}
