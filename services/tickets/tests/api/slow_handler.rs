//! Drill: a handler slower than the consumer's ack wait (the database
//! answers every packet late, through a fault proxy) is applied once: the
//! listener keeps telling the server it is still working on the event, so
//! the server does not hand it to anyone else meanwhile.

use std::time::{Duration, Instant};

use common::events::{Event as _, OrderCreated};
use common::listener::ListenerOptions;
use common::testing::{self, Fault};
use uuid::Uuid;

use crate::helpers::{order_created, signed_in, spawn_app_behind_proxy};

#[tokio::test]
async fn an_order_created_whose_handling_outlasts_the_ack_wait_is_delivered_and_applied_once() {
    let (app, proxy) = spawn_app_behind_proxy().await;
    let (_, cookie) = signed_in();
    app.ready_checks(Duration::from_secs(10)).await;
    let ticket = app.create_ticket(&cookie, "Slow", 10.0).await;
    app.wait_for_published("ticket.created", 1).await;
    let ack_wait = ListenerOptions::default().ack_wait;

    proxy.set(Fault::Latency(Duration::from_millis(250)));
    let order = Uuid::now_v7();
    app.publish(&order_created(order, ticket)).await;
    let started = Instant::now();
    let applied = testing::eventually(Duration::from_secs(40), || async {
        sqlx::query_scalar::<_, Option<Uuid>>("SELECT order_id FROM tickets WHERE id = $1")
            .bind(ticket)
            .fetch_one(&app.db.pool)
            .await
            .ok()
            .flatten()
            == Some(order)
    })
    .await;
    let took = started.elapsed();
    proxy.set(Fault::Pass);
    eprintln!(
        "slow handler drill: order.created applied {took:?} after it was published (ack wait {ack_wait:?})"
    );
    assert!(applied, "applied");
    assert!(
        took > ack_wait,
        "the handling outlasted the ack wait ({took:?})"
    );

    app.wait_until_consumed(OrderCreated::SUBJECT).await;
    let consumer = app
        .consumer_info("order.created")
        .await
        .expect("the consumer");
    assert_eq!(consumer.delivered.consumer_sequence, 1, "delivered once");
    let updated = app.wait_for_published("ticket.updated", 1).await;
    assert_eq!(updated[0]["version"], 1, "applied once");
}
