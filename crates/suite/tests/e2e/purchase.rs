use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Suite, browser};

async fn signed_up(suite: &Suite, email: &str) -> reqwest::Client {
    let client = browser();
    let response = client
        .post(suite.url("/api/users/signup"))
        .json(&json!({"email": email, "password": "password1"}))
        .send()
        .await
        .expect("signup");
    assert_eq!(response.status(), StatusCode::CREATED);
    client
}

async fn json_of(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Polls `GET path` until `check` holds for its body.
async fn wait_for(client: &reqwest::Client, url: String, check: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..500 {
        last = client
            .get(&url)
            .send()
            .await
            .expect("get")
            .json()
            .await
            .unwrap_or(Value::Null);
        if check(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{url} never satisfied the check; last body {last}");
}

#[tokio::test]
async fn a_reservation_locks_the_ticket_until_cancelled_then_another_buyer_gets_the_edited_ticket()
{
    let suite = Suite::start(&[]).await;
    let seller = signed_up(&suite, "seller@example.com").await;
    let buyer = signed_up(&suite, "buyer@example.com").await;
    let second_buyer = signed_up(&suite, "second@example.com").await;

    // The seller lists a ticket; the orders service hears of it.
    let (status, ticket) = json_of(
        seller
            .post(suite.url("/api/tickets"))
            .json(&json!({"title": "Concert", "price": 20}))
            .send()
            .await
            .expect("create"),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{ticket}");
    let ticket_id = ticket["id"].as_str().expect("id").to_string();
    let ticket_url = suite.url(&format!("/api/tickets/{ticket_id}"));

    // A buyer reserves it (retrying while the orders replica catches up).
    let mut reserved = None;
    for _ in 0..250 {
        let (status, body) = json_of(
            buyer
                .post(suite.url("/api/orders"))
                .json(&json!({"ticketId": ticket_id}))
                .send()
                .await
                .expect("reserve"),
        )
        .await;
        if status == StatusCode::CREATED {
            reserved = Some(body);
            break;
        }
        assert_eq!(
            status,
            StatusCode::NOT_FOUND,
            "only 'not heard of yet' is retried: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let order = reserved.expect("the buyer reserved the ticket");
    assert_eq!(order["status"], "created");
    assert_eq!(order["ticket"]["price"], json!(20.0));
    let order_id = order["id"].as_str().expect("order id").to_string();

    // The ticket shows the order and can no longer be edited.
    wait_for(&seller, ticket_url.clone(), |t| {
        t["orderId"] == json!(order_id)
    })
    .await;
    let (status, body) = json_of(
        seller
            .put(&ticket_url)
            .json(&json!({"title": "Concert", "price": 25}))
            .send()
            .await
            .expect("edit"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["errors"][0]["message"],
        "Cannot edit a reserved ticket"
    );

    // The buyer cancels: the ticket is free and editable again.
    let cancel = buyer
        .delete(suite.url(&format!("/api/orders/{order_id}")))
        .send()
        .await
        .expect("cancel");
    assert_eq!(cancel.status(), StatusCode::NO_CONTENT);
    wait_for(&seller, ticket_url.clone(), |t| {
        t.get("orderId").is_none_or(Value::is_null)
    })
    .await;
    let (status, edited) = json_of(
        seller
            .put(&ticket_url)
            .json(&json!({"title": "Concert (front row)", "price": 25.5}))
            .send()
            .await
            .expect("edit"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{edited}");

    // The orders service's replica hears of the edit (the cancelled order
    // shows its ticket from that replica)...
    wait_for(&buyer, suite.url(&format!("/api/orders/{order_id}")), |o| {
        o["ticket"]["price"] == json!(25.5)
    })
    .await;

    // ...and another buyer reserves the ticket at the edited price.
    let (status, second) = json_of(
        second_buyer
            .post(suite.url("/api/orders"))
            .json(&json!({"ticketId": ticket_id}))
            .send()
            .await
            .expect("reserve"),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    assert_eq!(second["ticket"]["price"], json!(25.5));
    assert_eq!(second["ticket"]["title"], "Concert (front row)");
}
