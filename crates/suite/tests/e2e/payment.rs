//! Paying and running out of time, through the suite's routes, with the
//! simulated card provider the suite runs without `STRIPE_SECRET_KEY`.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Suite, json_of, list_ticket, reserve, signed_up, wait_for};

async fn pay(
    suite: &Suite,
    buyer: &reqwest::Client,
    order_id: &str,
    token: &str,
) -> (StatusCode, Value) {
    json_of(
        buyer
            .post(suite.url("/api/payments"))
            .json(&json!({"orderId": order_id, "token": token}))
            .send()
            .await
            .expect("pay"),
    )
    .await
}

/// Retries the payment while the payments service has not heard of the
/// order yet (404); the answer to the first attempt it knew the order for.
async fn pay_known(
    suite: &Suite,
    buyer: &reqwest::Client,
    order_id: &str,
    token: &str,
) -> (StatusCode, Value) {
    for _ in 0..250 {
        let (status, body) = pay(suite, buyer, order_id, token).await;
        if status != StatusCode::NOT_FOUND {
            return (status, body);
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the payments service never heard of order {order_id}");
}

#[tokio::test]
async fn a_paid_order_completes_and_its_ticket_stays_sold() {
    let suite = Suite::start(&[]).await;
    let seller = signed_up(&suite, "seller@example.com").await;
    let buyer = signed_up(&suite, "buyer@example.com").await;
    let other = signed_up(&suite, "other@example.com").await;
    let ticket_id = list_ticket(&suite, &seller, 42.5).await;
    let order = reserve(&suite, &buyer, &ticket_id).await;
    let order_id = order["id"].as_str().expect("order id");

    let (status, payment) = pay_known(&suite, &buyer, order_id, "tok_visa").await;
    assert_eq!(status, StatusCode::CREATED, "{payment}");
    assert_eq!(payment["orderId"], json!(order_id));
    assert!(payment["stripeId"].as_str().is_some_and(|s| !s.is_empty()));

    let order_url = suite.url(&format!("/api/orders/{order_id}"));
    wait_for(&buyer, order_url, |o| o["status"] == "complete").await;

    // Sold: still showing the order, and nobody else can reserve it.
    let ticket = wait_for(
        &seller,
        suite.url(&format!("/api/tickets/{ticket_id}")),
        |t| t["orderId"] == json!(order_id),
    )
    .await;
    assert_eq!(ticket["orderId"], json!(order_id));
    let (status, body) = json_of(
        other
            .post(suite.url("/api/orders"))
            .json(&json!({"ticketId": ticket_id}))
            .send()
            .await
            .expect("reserve"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // A second payment is refused and charges nothing.
    let (status, body) = pay(&suite, &buyer, order_id, "tok_visa").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["errors"][0]["message"], "Order already paid");

    // The buyer got both mails, linking to the order.
    for subject in ["Reservation confirmed", "Payment received"] {
        let mail = suite.wait_for_mail("buyer@example.com", subject).await;
        assert!(
            mail.contains(&format!("/orders/{order_id}")),
            "{subject}: {mail}"
        );
    }
}

#[tokio::test]
async fn a_declined_card_is_a_402_and_the_order_stays_payable() {
    let suite = Suite::start(&[]).await;
    let seller = signed_up(&suite, "seller@example.com").await;
    let buyer = signed_up(&suite, "buyer@example.com").await;
    let ticket_id = list_ticket(&suite, &seller, 10.0).await;
    let order = reserve(&suite, &buyer, &ticket_id).await;
    let order_id = order["id"].as_str().expect("order id");

    let (status, body) = pay_known(&suite, &buyer, order_id, "tok_chargeDeclined").await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED, "{body}");
    assert_eq!(body["errors"][0]["message"], "Your card was declined.");
    let (status, shown) = json_of(
        buyer
            .get(suite.url(&format!("/api/orders/{order_id}")))
            .send()
            .await
            .expect("order"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shown["status"], "created");

    let (status, body) = pay(&suite, &buyer, order_id, "tok_mastercard").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    wait_for(&buyer, suite.url(&format!("/api/orders/{order_id}")), |o| {
        o["status"] == "complete"
    })
    .await;
}

#[tokio::test]
async fn an_unpaid_reservation_expires_and_frees_the_ticket() {
    // Cancellation must come from the expiration service: the sweep's grace
    // period is longer than the test waits, and the order is read only once
    // the ticket is already free again.
    let suite = Suite::start(&[
        ("ORDER_EXPIRATION_SECONDS", "2"),
        ("ORDER_EXPIRY_GRACE_SECONDS", "600"),
    ])
    .await;
    let seller = signed_up(&suite, "seller@example.com").await;
    let buyer = signed_up(&suite, "buyer@example.com").await;
    let ticket_id = list_ticket(&suite, &seller, 10.0).await;
    let order = reserve(&suite, &buyer, &ticket_id).await;
    let order_id = order["id"].as_str().expect("order id");
    let ticket_url = suite.url(&format!("/api/tickets/{ticket_id}"));
    wait_for(&seller, ticket_url.clone(), |t| {
        t["orderId"] == json!(order_id)
    })
    .await;

    wait_for(&seller, ticket_url, |t| {
        t.get("orderId").is_none_or(Value::is_null)
    })
    .await;
    let (_, shown) = json_of(
        buyer
            .get(suite.url(&format!("/api/orders/{order_id}")))
            .send()
            .await
            .expect("order"),
    )
    .await;
    assert_eq!(shown["status"], "cancelled");

    let (status, body) = pay(&suite, &buyer, order_id, "tok_visa").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let listed: Value = seller
        .get(suite.url("/api/tickets"))
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert!(
        listed
            .as_array()
            .is_some_and(|l| l.iter().any(|t| t["id"] == json!(ticket_id))),
        "the ticket is for sale again: {listed}"
    );
}
