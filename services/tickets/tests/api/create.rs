use common::events::Stream;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{error_fields, msg_id, signed_in, spawn_app};

const PRICE_MESSAGE: &str = "Price must be a number greater than 0 with at most two decimals";

#[tokio::test]
async fn creating_a_ticket_requires_a_signed_in_user() {
    let app = spawn_app().await;

    let response = app
        .post_ticket(None, &json!({"title": "Concert", "price": 10}))
        .await;

    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body, json!({"errors": [{"message": "Not signed in"}]}));
}

#[tokio::test]
async fn creating_a_ticket_returns_201_with_the_free_ticket_at_version_0() {
    let app = spawn_app().await;
    let (user, cookie) = signed_in();

    let response = app
        .post_ticket(
            Some(&cookie),
            &json!({"title": "  Concert  ", "price": 15.5}),
        )
        .await;

    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.expect("json");
    assert!(
        body["id"]
            .as_str()
            .is_some_and(|id| uuid::Uuid::parse_str(id).is_ok())
    );
    assert_eq!(body["title"], "Concert", "the title is trimmed");
    assert_eq!(body["price"], json!(15.5));
    assert_eq!(body["userId"], json!(user.id));
    assert_eq!(body["version"], 0);
    assert!(body.get("orderId").is_none(), "{body}");
}

#[tokio::test]
async fn creating_a_ticket_publishes_ticket_created_with_the_price_in_cents() {
    let app = spawn_app().await;
    let (user, cookie) = signed_in();

    let id = app.create_ticket(&cookie, "Concert", 19.99).await;

    let events = app.wait_for_published("ticket.created", 1).await;
    assert_eq!(
        events[0],
        json!({"id": id, "version": 0, "title": "Concert", "price": 1999, "userId": user.id})
    );
    let messages = app.messages(Stream::Tickets).await;
    assert_eq!(
        app.bus.unprefixed(messages[0].subject.as_str()),
        "ticket.created"
    );
    assert!(
        msg_id(&messages[0]).is_some_and(|id| uuid::Uuid::parse_str(&id).is_ok()),
        "Nats-Msg-Id is the event's id"
    );
}

#[tokio::test]
async fn a_missing_title_and_a_missing_price_get_one_entry_each() {
    let app = spawn_app().await;
    let (_, cookie) = signed_in();

    let response = app.post_ticket(Some(&cookie), &json!({})).await;

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        body,
        json!({"errors": [
            {"field": "title", "message": "Title is required"},
            {"field": "price", "message": PRICE_MESSAGE},
        ]})
    );
}

#[tokio::test]
async fn an_empty_or_whitespace_title_is_required() {
    let app = spawn_app().await;
    let (_, cookie) = signed_in();

    for title in ["", "   \t "] {
        let response = app
            .post_ticket(Some(&cookie), &json!({"title": title, "price": 10}))
            .await;

        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{title:?}");
        let body: Value = response.json().await.expect("json");
        assert_eq!(
            body,
            json!({"errors": [{"field": "title", "message": "Title is required"}]})
        );
    }
}

#[tokio::test]
async fn a_title_of_201_characters_is_too_long_but_200_are_fine() {
    let app = spawn_app().await;
    let (_, cookie) = signed_in();

    let too_long = app
        .post_ticket(
            Some(&cookie),
            &json!({"title": "x".repeat(201), "price": 10}),
        )
        .await;
    let longest = app
        .post_ticket(
            Some(&cookie),
            &json!({"title": "é".repeat(200), "price": 10}),
        )
        .await;

    assert_eq!(too_long.status(), StatusCode::BAD_REQUEST);
    let body: Value = too_long.json().await.expect("json");
    assert_eq!(
        body,
        json!({"errors": [{"field": "title", "message": "Title must be at most 200 characters"}]})
    );
    assert_eq!(longest.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn negative_zero_three_decimal_and_string_prices_are_rejected() {
    let app = spawn_app().await;
    let (_, cookie) = signed_in();

    for price in [
        json!(-10),
        json!(0),
        json!(10.005),
        json!("10"),
        json!(null),
    ] {
        let response = app
            .post_ticket(Some(&cookie), &json!({"title": "Concert", "price": price}))
            .await;

        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{price}");
        let body: Value = response.json().await.expect("json");
        assert_eq!(
            body,
            json!({"errors": [{"field": "price", "message": PRICE_MESSAGE}]}),
            "{price}"
        );
    }
}

#[tokio::test]
async fn a_bad_title_and_a_bad_price_are_reported_together() {
    let app = spawn_app().await;
    let (_, cookie) = signed_in();

    let response = app
        .post_ticket(Some(&cookie), &json!({"title": " ", "price": -1}))
        .await;

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.expect("json");
    assert_eq!(error_fields(&body), vec!["title", "price"]);
}

#[tokio::test]
async fn a_rejected_ticket_is_neither_stored_nor_published() {
    let app = spawn_app().await;
    let (_, cookie) = signed_in();

    app.post_ticket(Some(&cookie), &json!({"title": "Concert", "price": 0}))
        .await;

    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM tickets")
        .fetch_one(&app.db.pool)
        .await
        .expect("count");
    let enqueued: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(&app.db.pool)
        .await
        .expect("count");
    assert_eq!((stored, enqueued), (0, 0));
}

#[tokio::test]
async fn a_new_ticket_answers_stores_and_publishes_the_same_details_to_the_microsecond() {
    let app = spawn_app().await;
    let (_, cookie) = signed_in();

    let response = app
        .post_ticket(
            Some(&cookie),
            &json!({"title": "Box", "price": 80, "eventName": "Tosca", "venue": "La Scala",
                    "city": "Milan", "eventDate": "2099-03-01T19:30:00.123456789+01:00",
                    "section": "Box 4", "row": "1", "seat": "2"}),
        )
        .await;

    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.expect("json");
    let id = created["id"].as_str().expect("id").parse().expect("uuid");
    assert_eq!(created["eventDate"], "2099-03-01T18:30:00.123456Z");
    assert_eq!(app.ticket(id).await, created, "what GET answers");
    let events = app.wait_for_published("ticket.created", 1).await;
    assert_eq!(
        events[0],
        json!({"id": id, "version": 0, "title": "Box", "price": 8000,
               "userId": created["userId"], "eventName": "Tosca", "venue": "La Scala",
               "city": "Milan", "eventDate": "2099-03-01T18:30:00.123456Z",
               "section": "Box 4", "row": "1", "seat": "2"})
    );
}
