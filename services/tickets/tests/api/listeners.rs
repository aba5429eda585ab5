use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{order_cancelled, order_created, signed_in, spawn_app};

#[tokio::test]
async fn order_created_reserves_the_ticket_and_publishes_ticket_updated() {
    let app = spawn_app().await;
    let (user, cookie) = signed_in();
    let ticket = app.create_ticket(&cookie, "Concert", 20.0).await;
    let order = Uuid::now_v7();

    app.publish(&order_created(order, ticket)).await;

    let body = app.wait_for_holder(ticket, Some(order)).await;
    assert_eq!(body["version"], 1);
    let updates = app.wait_for_published("ticket.updated", 1).await;
    assert_eq!(
        updates[0],
        json!({"id": ticket, "version": 1, "title": "Concert", "price": 2000,
               "userId": user.id, "orderId": order})
    );
    let listed: Vec<Value> = app.get("/api/tickets").await.json().await.expect("json");
    assert!(
        listed.is_empty(),
        "a reserved ticket is not for sale: {listed:?}"
    );
}

#[tokio::test]
async fn order_cancelled_releases_the_ticket_and_publishes_ticket_updated() {
    let app = spawn_app().await;
    let (user, cookie) = signed_in();
    let ticket = app.create_ticket(&cookie, "Concert", 20.0).await;
    let order = Uuid::now_v7();
    app.publish(&order_created(order, ticket)).await;
    app.wait_for_holder(ticket, Some(order)).await;

    app.publish(&order_cancelled(order, ticket)).await;

    let body = app.wait_for_holder(ticket, None).await;
    assert_eq!(body["version"], 2);
    let updates = app.wait_for_published("ticket.updated", 2).await;
    assert_eq!(
        updates[1],
        json!({"id": ticket, "version": 2, "title": "Concert", "price": 2000, "userId": user.id})
    );
}

#[tokio::test]
async fn a_duplicate_order_created_is_applied_once() {
    let app = spawn_app().await;
    let (_, cookie) = signed_in();
    let ticket = app.create_ticket(&cookie, "Concert", 20.0).await;
    let order = Uuid::now_v7();

    // Two deliveries of one event, as a re-publish with a new message id
    // would cause; JetStream's de-duplication cannot catch it.
    app.publish(&order_created(order, ticket)).await;
    app.publish(&order_created(order, ticket)).await;
    app.wait_until_consumed("order.created").await;

    let body = app.wait_for_holder(ticket, Some(order)).await;
    assert_eq!(body["version"], 1, "the version was bumped once");
    app.wait_for_published("ticket.updated", 1).await;
}

#[tokio::test]
async fn an_order_cancelled_before_its_order_created_leaves_the_ticket_free() {
    let app = spawn_app().await;
    let (_, cookie) = signed_in();
    let ticket = app.create_ticket(&cookie, "Concert", 20.0).await;
    let order = Uuid::now_v7();
    app.publish(&order_cancelled(order, ticket)).await;
    app.wait_until_consumed("order.cancelled").await;

    app.publish(&order_created(order, ticket)).await;
    app.wait_until_consumed("order.created").await;

    let body = app.ticket(ticket).await;
    assert!(body.get("orderId").is_none(), "{body}");
    assert_eq!(body["version"], 0);
    assert!(app.published("ticket.updated").await.is_empty());
}

#[tokio::test]
async fn a_second_order_waits_until_the_first_is_cancelled_and_then_reserves_the_ticket() {
    let app = spawn_app().await;
    let (_, cookie) = signed_in();
    let ticket = app.create_ticket(&cookie, "Concert", 20.0).await;
    let (first, second) = (Uuid::now_v7(), Uuid::now_v7());
    app.publish(&order_created(first, ticket)).await;
    app.wait_for_holder(ticket, Some(first)).await;

    app.publish(&order_created(second, ticket)).await;
    // The second order's event has come back at least once: it was refused.
    let retried = common::testing::eventually(crate::helpers::WAIT, || async {
        app.consumer_info("order.created")
            .await
            .is_some_and(|i| i.delivered.consumer_sequence >= 3)
    })
    .await;
    assert!(retried, "order.created of the second order was redelivered");
    assert_eq!(app.ticket(ticket).await["orderId"], json!(first));

    app.publish(&order_cancelled(first, ticket)).await;

    let body = app.wait_for_holder(ticket, Some(second)).await;
    assert_eq!(body["version"], 3, "reserved, released, reserved again");
    let updates = app.wait_for_published("ticket.updated", 3).await;
    let holders: Vec<Value> = updates.iter().map(|u| u["orderId"].clone()).collect();
    assert_eq!(holders, vec![json!(first), Value::Null, json!(second)]);
}
