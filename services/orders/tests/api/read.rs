//! `GET /api/orders` and `GET /api/orders/:id`: a buyer reads their orders.

use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{User, spawn_app};

#[tokio::test]
async fn the_list_holds_only_my_orders_newest_first_with_their_tickets() {
    let app = spawn_app().await;
    let me = User::new();
    let someone_else = User::new();
    let older_ticket = app.seed_ticket(Uuid::now_v7(), "Older", 1000).await;
    let newer_ticket = app.seed_ticket(Uuid::now_v7(), "Newer", 2550).await;
    let other_ticket = app.ticket().await;
    let older = app.create_order(&me, older_ticket).await;
    app.create_order(&someone_else, other_ticket).await;
    let newer = app.create_order(&me, newer_ticket).await;

    let response = app.get("/api/orders", Some(&me)).await;

    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    let orders = body.as_array().expect("a list");
    let ids: Vec<&str> = orders.iter().filter_map(|o| o["id"].as_str()).collect();
    assert_eq!(ids, vec![newer.to_string(), older.to_string()]);
    assert_eq!(
        orders[0]["ticket"],
        json!({"id": newer_ticket, "title": "Newer", "price": 25.5, "version": 0})
    );
    assert_eq!(orders[1]["ticket"]["title"], "Older");
    assert!(orders.iter().all(|o| o["userId"] == json!(me.id)));
}

#[tokio::test]
async fn a_buyer_without_orders_gets_an_empty_list() {
    let app = spawn_app().await;
    app.create_order(&User::new(), app.ticket().await).await;

    let response = app.get("/api/orders", Some(&User::new())).await;

    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body, json!([]));
}

#[tokio::test]
async fn a_buyer_can_read_their_own_order() {
    let app = spawn_app().await;
    let buyer = User::new();
    let ticket = app.seed_ticket(Uuid::now_v7(), "Concert", 1999).await;
    let created: Value = app
        .post_order(&buyer, ticket)
        .await
        .json()
        .await
        .expect("json");
    let id = created["id"].as_str().expect("id");

    let response = app.get(&format!("/api/orders/{id}"), Some(&buyer)).await;

    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body, created, "the same order as POST answered");
    assert_eq!(body["ticket"]["price"], 19.99);
}

#[tokio::test]
async fn reading_another_buyers_order_is_403() {
    let app = spawn_app().await;
    let order = app.create_order(&User::new(), app.ticket().await).await;

    let response = app
        .get(&format!("/api/orders/{order}"), Some(&User::new()))
        .await;

    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn reading_an_unknown_or_malformed_order_id_is_404() {
    let app = spawn_app().await;
    let me = User::new();

    let unknown = app
        .get(&format!("/api/orders/{}", Uuid::now_v7()), Some(&me))
        .await;
    let malformed = app.get("/api/orders/not-an-id", Some(&me)).await;

    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert_eq!(malformed.status(), StatusCode::NOT_FOUND);
    let body: Value = malformed.json().await.expect("json");
    assert_eq!(body, json!({"errors": [{"message": "Not found"}]}));
}
