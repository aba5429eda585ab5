//! Replicas and restarts: two instances on one database send each mail once,
//! and a reminder that fell due while the service was down goes when it is
//! back; health and readiness as every service answers them.

use std::time::Duration;

use chrono::Utc;
use common::testing::eventually;

use crate::helpers::{WAIT, order, spawn_app, stop, ticket, user};

#[tokio::test]
async fn two_replicas_send_each_mail_once() {
    // Arrange: a second instance sharing the database and the consumers.
    let app = spawn_app(Duration::from_secs(60)).await;
    let replica = app.replica().await;
    let users: Vec<_> = (0..20).map(|i| user(&format!("u{i}"))).collect();

    // Act
    for u in &users {
        app.publish(u).await;
    }

    // Assert
    let all = eventually(WAIT, || async { app.smtp.received().len() >= users.len() }).await;
    assert!(all, "every welcome mail arrives");
    tokio::time::sleep(Duration::from_secs(1)).await;
    for u in &users {
        assert_eq!(app.mails(&u.email, "Welcome").len(), 1, "{}", u.email);
    }
    assert_eq!(app.smtp.received().len(), users.len());
    stop(&replica).await;
}

#[tokio::test]
async fn a_reminder_due_while_the_service_was_down_is_sent_when_it_is_back() {
    // Arrange: a reservation whose reminder is due in 2 s.
    let app = spawn_app(Duration::from_secs(8)).await;
    let (buyer, seller) = (user("buyer"), user("seller"));
    let concert = ticket(&seller, "Concert", 1550);
    let reserved = order(&buyer, &concert, Utc::now() + Duration::from_secs(10));
    app.publish(&buyer).await;
    app.publish(&seller).await;
    app.publish(&concert).await;
    app.publish(&reserved).await;
    assert!(
        app.wait_for_mails(&buyer.email, "Reservation confirmed", 1)
            .await
    );

    // Act: down past the reminder's due time, then started again.
    app.stop().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(app.mails(&buyer.email, "Your reservation").is_empty());
    let restarted = app.replica().await;

    // Assert
    assert!(
        app.wait_for_mails(&buyer.email, "Your reservation of Concert", 1)
            .await
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(app.mails(&buyer.email, "Your reservation").len(), 1);
    stop(&restarted).await;
}

#[tokio::test]
async fn it_is_alive_and_ready_with_its_database() {
    let app = spawn_app(Duration::from_secs(60)).await;

    let health = app.app.client.send_get("/healthz").await;
    let ready = app.app.client.send_get("/readyz").await;

    assert_eq!(health.status(), 200);
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.expect("readiness JSON");
    assert_eq!(body["checks"]["notifications-database"], "ok", "{body}");
}
