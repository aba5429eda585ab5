//! The tickets replica, kept from ticket.created and ticket.updated in version order.

use common::events::{Stream, TicketCreated, TicketSnapshot, TicketUpdated};
use common::listener::{Delivery, Listener, Outcome};
use common::testing::eventually;
use orders::events::{TicketCreatedListener, TicketUpdatedListener};
use uuid::Uuid;

use crate::helpers::{WAIT, spawn_app};

fn snapshot(id: Uuid, version: i64, price: i64) -> TicketSnapshot {
    TicketSnapshot {
        id,
        version,
        title: format!("Concert v{version}"),
        price,
        user_id: Uuid::nil(),
        order_id: None,
        details: Default::default(),
    }
}

fn delivery<E>(event: E) -> Delivery<E> {
    Delivery {
        id: Uuid::now_v7(),
        event,
        attempt: 1,
    }
}

#[tokio::test]
async fn ticket_events_in_order_keep_the_replica_at_the_latest_version() {
    let app = spawn_app().await;
    let id = Uuid::now_v7();

    app.publish(&TicketCreated(snapshot(id, 0, 500))).await;
    app.publish(&TicketUpdated(TicketSnapshot {
        order_id: Some(Uuid::now_v7()),
        ..snapshot(id, 1, 750)
    }))
    .await;

    assert!(app.replica_reaches(id, 1).await);
    assert_eq!(app.replica(id).await, Some((1, "Concert v1".into(), 750)));
}

#[tokio::test]
async fn an_update_arriving_before_its_predecessor_waits_for_it_and_is_applied_in_order() {
    let app = spawn_app().await;
    let id = Uuid::now_v7();
    app.publish(&TicketCreated(snapshot(id, 0, 500))).await;
    assert!(app.replica_reaches(id, 0).await);

    app.publish(&TicketUpdated(snapshot(id, 2, 1500))).await;
    let turned_back = eventually(WAIT, || async {
        app.deliveries("ticket.updated").await >= 2
    })
    .await;
    let while_early = app.replica(id).await;
    app.publish(&TicketUpdated(snapshot(id, 1, 1000))).await;

    assert!(
        turned_back,
        "version 2 was delivered, refused and redelivered"
    );
    assert_eq!(
        while_early,
        Some((0, "Concert v0".into(), 500)),
        "version 2 was not applied before version 1"
    );
    assert!(app.replica_reaches(id, 2).await);
    assert_eq!(app.replica(id).await, Some((2, "Concert v2".into(), 1500)));
    assert!(app.messages(Stream::DeadLetter).await.is_empty());
}

#[tokio::test]
async fn a_duplicated_update_on_the_bus_is_ignored_and_does_not_block_the_next() {
    let app = spawn_app().await;
    let id = Uuid::now_v7();
    app.publish(&TicketCreated(snapshot(id, 0, 500))).await;

    // Two message ids, so JetStream stores both and the listener sees both.
    app.publish(&TicketUpdated(snapshot(id, 1, 1000))).await;
    app.publish(&TicketUpdated(snapshot(id, 1, 1000))).await;
    app.publish(&TicketUpdated(snapshot(id, 2, 2000))).await;

    assert!(app.replica_reaches(id, 2).await);
    assert_eq!(app.replica(id).await, Some((2, "Concert v2".into(), 2000)));
    assert!(app.messages(Stream::DeadLetter).await.is_empty());
}

#[tokio::test]
async fn an_update_before_its_ticket_is_created_is_applied_once_the_ticket_arrives() {
    let app = spawn_app().await;
    let id = Uuid::now_v7();
    app.publish(&TicketUpdated(snapshot(id, 1, 1000))).await;
    let turned_back = eventually(WAIT, || async {
        app.deliveries("ticket.updated").await >= 2
    })
    .await;
    let before_creation = app.replica(id).await;

    app.publish(&TicketCreated(snapshot(id, 0, 500))).await;

    assert!(turned_back, "the update was refused and redelivered");
    assert_eq!(before_creation, None);
    assert!(app.replica_reaches(id, 1).await);
    assert_eq!(app.replica(id).await, Some((1, "Concert v1".into(), 1000)));
}

#[tokio::test]
async fn the_replica_listeners_report_applied_duplicate_and_not_yet() {
    let app = spawn_app().await;
    let created = TicketCreatedListener::new(app.db.pool.clone());
    let updated = TicketUpdatedListener::new(app.db.pool.clone());
    let id = Uuid::now_v7();

    let unknown = updated
        .handle(delivery(TicketUpdated(snapshot(id, 1, 1000))))
        .await
        .expect("handled");
    let first_create = created
        .handle(delivery(TicketCreated(snapshot(id, 0, 500))))
        .await
        .expect("handled");
    let again_create = created
        .handle(delivery(TicketCreated(snapshot(id, 0, 999))))
        .await
        .expect("handled");
    let early = updated
        .handle(delivery(TicketUpdated(snapshot(id, 2, 2000))))
        .await
        .expect("handled");
    let first_update = updated
        .handle(delivery(TicketUpdated(snapshot(id, 1, 1000))))
        .await
        .expect("handled");
    let again_update = updated
        .handle(delivery(TicketUpdated(snapshot(id, 1, 1111))))
        .await
        .expect("handled");

    assert_eq!(unknown, Outcome::NotYet, "no ticket yet");
    assert_eq!(first_create, Outcome::Applied);
    assert_eq!(again_create, Outcome::Duplicate);
    assert_eq!(early, Outcome::NotYet, "version 1 is missing");
    assert_eq!(first_update, Outcome::Applied);
    assert_eq!(again_update, Outcome::Duplicate);
    assert_eq!(app.replica(id).await, Some((1, "Concert v1".into(), 1000)));
}
