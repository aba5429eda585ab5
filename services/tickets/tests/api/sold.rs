//! order.completed sells a ticket: it says so, leaves the listings, cannot be
//! edited, and counts in the seller's totals.

use common::events::{OrderCompleted, TicketRef};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, WAIT, order_created, signed_in, spawn_app};

fn order_completed(order: Uuid, ticket: Uuid) -> OrderCompleted {
    OrderCompleted {
        id: order,
        version: 1,
        ticket: TicketRef { id: ticket },
    }
}

async fn wait_for_status(app: &TestApp, ticket: Uuid, status: &str) -> Value {
    let reached = common::testing::eventually(WAIT, || async {
        app.ticket(ticket).await["status"] == status
    })
    .await;
    let body = app.ticket(ticket).await;
    assert!(reached, "expected {status}, got {body}");
    body
}

async fn summary(app: &TestApp, cookie: &str) -> Value {
    let response = app
        .client
        .request(reqwest::Method::GET, "/api/tickets/summary")
        .header("Cookie", cookie)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    response.json().await.expect("json")
}

#[tokio::test]
async fn order_completed_sells_the_reserved_ticket_and_publishes_its_version() {
    let app = spawn_app().await;
    let (_, cookie) = signed_in();
    let ticket = app.create_ticket(&cookie, "Concert", 20.0).await;
    let order = Uuid::now_v7();
    app.publish(&order_created(order, ticket)).await;
    let reserved = wait_for_status(&app, ticket, "reserved").await;
    assert!(reserved["reservedUntil"].is_string(), "{reserved}");

    app.publish(&order_completed(order, ticket)).await;

    let sold = wait_for_status(&app, ticket, "sold").await;
    assert_eq!(sold["version"], 2);
    assert_eq!(sold["orderId"], json!(order));
    assert!(sold["soldAt"].is_string(), "{sold}");
    assert!(sold.get("reservedUntil").is_none(), "{sold}");
    let updates = app.wait_for_published("ticket.updated", 2).await;
    assert_eq!(updates[1]["version"], 2);
}

#[tokio::test]
async fn order_completed_before_its_reservation_waits_for_it() {
    let app = spawn_app().await;
    let (_, cookie) = signed_in();
    let ticket = app.create_ticket(&cookie, "Concert", 20.0).await;
    let order = Uuid::now_v7();

    app.publish(&order_completed(order, ticket)).await;
    app.publish(&order_created(order, ticket)).await;

    let sold = wait_for_status(&app, ticket, "sold").await;
    assert_eq!(sold["version"], 2);
}

#[tokio::test]
async fn a_duplicate_order_completed_is_applied_once() {
    let app = spawn_app().await;
    let (_, cookie) = signed_in();
    let ticket = app.create_ticket(&cookie, "Concert", 20.0).await;
    let order = Uuid::now_v7();
    app.publish(&order_created(order, ticket)).await;
    app.publish(&order_completed(order, ticket)).await;
    app.publish(&order_completed(order, ticket)).await;
    wait_for_status(&app, ticket, "sold").await;
    app.wait_until_consumed("order.completed").await;

    assert_eq!(app.ticket(ticket).await["version"], 2);
    // Exactly two: the reservation and the sale, whenever the relay sends them.
    app.wait_for_published("ticket.updated", 2).await;
}

#[tokio::test]
async fn a_sold_ticket_cannot_be_edited_and_stays_out_of_the_listings() {
    let app = spawn_app().await;
    let (_, cookie) = signed_in();
    let ticket = app.create_ticket(&cookie, "Concert", 20.0).await;
    let order = Uuid::now_v7();
    app.publish(&order_created(order, ticket)).await;
    app.publish(&order_completed(order, ticket)).await;
    wait_for_status(&app, ticket, "sold").await;

    let response = app
        .put_ticket(
            Some(&cookie),
            &ticket.to_string(),
            &json!({"title": "X", "price": 1}),
        )
        .await;
    assert_eq!(response.status(), reqwest::StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["errors"][0]["message"], "Cannot edit a sold ticket");
    let listed: Vec<Value> = app.get("/api/tickets").await.json().await.expect("json");
    assert!(listed.is_empty(), "{listed:?}");
}

#[tokio::test]
async fn the_summary_counts_the_sellers_tickets_by_state_and_what_the_sold_ones_earned() {
    let app = spawn_app().await;
    let (_, cookie) = signed_in();
    let sold = app.create_ticket(&cookie, "Sold", 20.5).await;
    let reserved = app.create_ticket(&cookie, "Reserved", 30.0).await;
    app.create_ticket(&cookie, "Free", 40.0).await;
    let (_, other) = signed_in();
    app.create_ticket(&other, "Not mine", 99.0).await;
    let (first, second) = (Uuid::now_v7(), Uuid::now_v7());
    app.publish(&order_created(first, sold)).await;
    app.publish(&order_completed(first, sold)).await;
    app.publish(&order_created(second, reserved)).await;
    wait_for_status(&app, sold, "sold").await;
    wait_for_status(&app, reserved, "reserved").await;

    assert_eq!(
        summary(&app, &cookie).await,
        json!({"listed": 3, "available": 1, "reserved": 1, "sold": 1, "earned": 20.5})
    );
    let anonymous = app.get("/api/tickets/summary").await;
    assert_eq!(anonymous.status(), reqwest::StatusCode::UNAUTHORIZED);
}
