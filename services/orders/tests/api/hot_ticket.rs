//! The hold on a ticket is atomic: many buyers, one order.

use common::events::OrderCreated;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{User, first_message, spawn_app};

const BUYERS: usize = 100;

#[tokio::test]
async fn a_hundred_buyers_racing_for_one_ticket_leave_exactly_one_order() {
    let app = spawn_app().await;
    let ticket = app.ticket().await;
    let buyers: Vec<User> = (0..BUYERS).map(|_| User::new()).collect();

    let attempts = buyers.iter().map(|buyer| async {
        let response = app.post_order(buyer, ticket).await;
        let status = response.status();
        let body: Value = response.json().await.expect("json");
        (status, body)
    });
    let results = futures::future::join_all(attempts).await;

    let created = results
        .iter()
        .filter(|(status, _)| *status == StatusCode::CREATED)
        .count();
    let reserved = results
        .iter()
        .filter(|(status, body)| {
            *status == StatusCode::BAD_REQUEST
                && first_message(body) == "Ticket is already reserved"
        })
        .count();
    assert_eq!(created, 1, "exactly one buyer wins");
    assert_eq!(
        reserved,
        BUYERS - 1,
        "everybody else is told it is reserved"
    );
    assert_eq!(
        app.count(
            "SELECT count(*) FROM orders WHERE status IN ('created', 'awaiting:payment', 'complete')"
        )
        .await,
        1
    );
    let events = app.wait_for_published::<OrderCreated>(1).await;
    assert_eq!(events.len(), 1, "one order.created in the stream");
    assert_eq!(app.count("SELECT count(*) FROM outbox").await, 1);
}
