use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Suite, json_of, list_ticket, reserve, signed_up, wait_for};

#[tokio::test]
async fn a_reservation_locks_the_ticket_until_cancelled_then_another_buyer_gets_the_edited_ticket()
{
    let suite = Suite::start(&[]).await;
    let seller = signed_up(&suite, "seller@example.com").await;
    let buyer = signed_up(&suite, "buyer@example.com").await;
    let second_buyer = signed_up(&suite, "second@example.com").await;

    // The seller lists a ticket; a buyer reserves it once the orders
    // service has heard of it.
    let ticket_id = list_ticket(&suite, &seller, 20.0).await;
    let ticket_url = suite.url(&format!("/api/tickets/{ticket_id}"));
    let order = reserve(&suite, &buyer, &ticket_id).await;
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
