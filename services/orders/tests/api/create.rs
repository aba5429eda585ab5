//! `POST /api/orders`: a buyer reserves a ticket.

use std::time::Duration;

use chrono::{DateTime, Utc};
use common::events::{OrderCreated, OrderStatus, Stream};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{ORDER_EXPIRATION, User, error_fields, first_message, spawn_app};

#[tokio::test]
async fn reserving_a_ticket_returns_201_with_the_order_and_its_ticket() {
    let app = spawn_app().await;
    let seller = User::new();
    let buyer = User::new();
    let ticket = app.seed_ticket(seller.id, "Concert", 1550).await;
    let before = Utc::now();

    let response = app.post_order(&buyer, ticket).await;

    let after = Utc::now();
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.expect("json");
    let id = body["id"].as_str().expect("an id");
    assert!(Uuid::parse_str(id).is_ok(), "{id}");
    assert_eq!(body["userId"], json!(buyer.id));
    assert_eq!(body["status"], "created");
    assert_eq!(body["version"], 0);
    assert_eq!(
        body["ticket"],
        json!({"id": ticket, "title": "Concert", "price": 15.5, "version": 0})
    );
    let expires_at = body["expiresAt"].as_str().expect("expiresAt");
    assert!(expires_at.ends_with('Z'), "UTC: {expires_at}");
    let expires_at: DateTime<Utc> = expires_at.parse().expect("RFC 3339");
    let expiration = chrono::Duration::from_std(ORDER_EXPIRATION).expect("duration");
    let slack = chrono::Duration::seconds(1);
    assert!(
        expires_at >= before + expiration - slack && expires_at <= after + expiration + slack,
        "{expires_at} is now + {ORDER_EXPIRATION:?}"
    );
    let keys: Vec<&String> = body.as_object().expect("object").keys().collect();
    assert_eq!(
        keys.len(),
        6,
        "id, userId, status, expiresAt, version, ticket: {keys:?}"
    );
}

#[tokio::test]
async fn a_new_order_publishes_order_created_with_the_price_in_cents() {
    let app = spawn_app().await;
    let buyer = User::new();
    let ticket = app.seed_ticket(Uuid::now_v7(), "Concert", 1550).await;

    let response = app.post_order(&buyer, ticket).await;

    let body: Value = response.json().await.expect("json");
    let events = app.wait_for_published::<OrderCreated>(1).await;
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!(event.id.to_string(), body["id"].as_str().expect("id"));
    assert_eq!(event.version, 0);
    assert_eq!(event.status, OrderStatus::Created);
    assert_eq!(event.user_id, buyer.id);
    assert_eq!(event.ticket.id, ticket);
    assert_eq!(event.ticket.price, 1550);
    let expires_at: DateTime<Utc> = body["expiresAt"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("expiresAt");
    assert_eq!(
        event.expires_at, expires_at,
        "the event and the response agree"
    );
    let messages = app.messages(Stream::Orders).await;
    assert!(
        messages[0].headers.get("Nats-Msg-Id").is_some(),
        "published through the outbox, with its event id"
    );
}

#[tokio::test]
async fn a_missing_ticket_id_is_a_400_on_that_field() {
    let app = spawn_app().await;

    let response = app.post_order_body(Some(&User::new()), &json!({})).await;

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.expect("json");
    assert_eq!(error_fields(&body), vec!["ticketId"]);
    assert_eq!(first_message(&body), "ticketId is required");
}

#[tokio::test]
async fn a_ticket_id_that_is_not_a_uuid_is_a_400_on_that_field() {
    let app = spawn_app().await;

    for bad in [json!("not-an-id"), json!(42)] {
        let response = app
            .post_order_body(Some(&User::new()), &json!({"ticketId": bad}))
            .await;

        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad}");
        let body: Value = response.json().await.expect("json");
        assert_eq!(error_fields(&body), vec!["ticketId"], "{bad}");
        assert_eq!(first_message(&body), "ticketId must be a valid id");
    }
}

#[tokio::test]
async fn a_ticket_unknown_to_the_replica_is_404() {
    let app = spawn_app().await;

    let response = app.post_order(&User::new(), Uuid::now_v7()).await;

    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.count("SELECT count(*) FROM orders").await, 0);
}

#[tokio::test]
async fn a_seller_cannot_buy_their_own_ticket() {
    let app = spawn_app().await;
    let seller = User::new();
    let ticket = app.seed_ticket(seller.id, "Concert", 2000).await;

    let response = app.post_order(&seller, ticket).await;

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.expect("json");
    assert_eq!(first_message(&body), "You cannot buy your own ticket");
}

#[tokio::test]
async fn a_ticket_held_by_an_active_order_is_already_reserved() {
    let app = spawn_app().await;
    let ticket = app.ticket().await;
    app.create_order(&User::new(), ticket).await;

    let response = app.post_order(&User::new(), ticket).await;

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.expect("json");
    assert_eq!(first_message(&body), "Ticket is already reserved");
    assert_eq!(app.count("SELECT count(*) FROM orders").await, 1);
    assert_eq!(
        app.count("SELECT count(*) FROM outbox").await,
        1,
        "the refused order enqueued nothing"
    );
}

#[tokio::test]
async fn reserving_a_ticket_the_buyer_already_holds_returns_their_order_with_200() {
    let app = spawn_app().await;
    let buyer = User::new();
    let ticket = app.ticket().await;
    let first = app.create_order(&buyer, ticket).await;

    let response = app.post_order(&buyer, ticket).await;

    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["id"], json!(first));
    assert_eq!(body["userId"], json!(buyer.id));
    assert_eq!(body["status"], "created");
    assert_eq!(app.count("SELECT count(*) FROM orders").await, 1);
    assert_eq!(
        app.count("SELECT count(*) FROM outbox").await,
        1,
        "the retry enqueued no second order.created"
    );
}

#[tokio::test]
async fn reserving_a_ticket_the_buyer_already_paid_for_is_already_reserved() {
    let app = spawn_app().await;
    let buyer = User::new();
    let ticket = app.ticket().await;
    let order = app.create_order(&buyer, ticket).await;
    app.force_status(order, "complete").await;

    let response = app.post_order(&buyer, ticket).await;

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.expect("json");
    assert_eq!(first_message(&body), "Ticket is already reserved");
}

#[tokio::test]
async fn a_buyer_whose_own_reservation_is_overdue_gets_a_new_one() {
    let app = spawn_app().await;
    let buyer = User::new();
    let ticket = app.ticket().await;
    let first = app.create_order(&buyer, ticket).await;
    sqlx::query("UPDATE orders SET expires_at = now() - interval '1 second' WHERE id = $1")
        .bind(first)
        .execute(&app.db.pool)
        .await
        .expect("age the order");

    let response = app.post_order(&buyer, ticket).await;

    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.expect("json");
    assert_ne!(body["id"], json!(first));
}

#[tokio::test]
async fn a_ticket_whose_order_was_cancelled_can_be_reserved_again() {
    let app = spawn_app().await;
    let buyer = User::new();
    let ticket = app.ticket().await;
    let first = app.create_order(&buyer, ticket).await;
    app.delete(&format!("/api/orders/{first}"), Some(&buyer))
        .await;

    let response = app.post_order(&buyer, ticket).await;

    assert_eq!(response.status(), StatusCode::CREATED);
    let events = app.wait_for_published::<OrderCreated>(2).await;
    assert_eq!(events.len(), 2);
}

#[tokio::test]
async fn a_ticket_listed_through_ticket_created_can_be_reserved() {
    let app = spawn_app().await;
    let seller = User::new();
    let ticket = Uuid::now_v7();
    app.publish(&common::events::TicketCreated(
        common::events::TicketSnapshot {
            id: ticket,
            version: 0,
            title: "Opera".into(),
            price: 4200,
            user_id: seller.id,
            order_id: None,
            details: Default::default(),
        },
    ))
    .await;
    let known = common::testing::eventually(Duration::from_secs(10), || async {
        app.count("SELECT count(*) FROM tickets").await == 1
    })
    .await;
    assert!(known, "the replica heard of the ticket");

    let response = app.post_order(&User::new(), ticket).await;

    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        body["ticket"],
        json!({"id": ticket, "title": "Opera", "price": 42.0, "version": 0})
    );
}

#[tokio::test]
async fn a_ticket_whose_event_has_passed_cannot_be_reserved() {
    let app = spawn_app().await;
    let ticket = app.ticket().await;
    sqlx::query("UPDATE tickets SET event_date = now() - interval '1 minute' WHERE id = $1")
        .bind(ticket)
        .execute(&app.db.pool)
        .await
        .expect("move the event into the past");

    let response = app.post_order(&User::new(), ticket).await;

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.expect("json");
    assert_eq!(first_message(&body), "This event has already taken place");
    assert_eq!(app.count("SELECT count(*) FROM orders").await, 0);
}

#[tokio::test]
async fn the_replica_keeps_the_event_date_that_ticket_events_carry() {
    let app = spawn_app().await;
    let ticket = Uuid::now_v7();
    let date = chrono::Utc::now() + chrono::Duration::days(3);
    app.publish(&common::events::TicketCreated(
        common::events::TicketSnapshot {
            id: ticket,
            version: 0,
            title: "Opera".into(),
            price: 4200,
            user_id: Uuid::now_v7(),
            order_id: None,
            details: common::events::EventDetails {
                event_date: Some(date),
                ..Default::default()
            },
        },
    ))
    .await;
    let stored = common::testing::eventually(Duration::from_secs(10), || async {
        app.count("SELECT count(*) FROM tickets WHERE event_date IS NOT NULL")
            .await
            == 1
    })
    .await;
    assert!(stored, "the replica holds the event date");
    let response = app.post_order(&User::new(), ticket).await;
    assert_eq!(response.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn a_retry_with_the_same_idempotency_key_replays_the_201_and_another_ticket_is_a_422() {
    let app = spawn_app().await;
    let buyer = User::new();
    let ticket = app.ticket().await;
    let other = app.ticket().await;
    let post = |ticket: Uuid| {
        reqwest::Client::new()
            .post(app.url("/api/orders"))
            .header("Cookie", &buyer.cookie)
            .header("Idempotency-Key", "reserve-1")
            .json(&json!({"ticketId": ticket}))
            .send()
    };

    let first = post(ticket).await.expect("first");
    let retry = post(ticket).await.expect("retry");
    let mismatch = post(other).await.expect("another ticket");

    assert_eq!(first.status(), StatusCode::CREATED);
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    let (first, retry): (Value, Value) = (
        first.json().await.expect("json"),
        retry.json().await.expect("json"),
    );
    assert_eq!(first, retry);
    assert_eq!(mismatch.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(app.count("SELECT count(*) FROM orders").await, 1);
}
