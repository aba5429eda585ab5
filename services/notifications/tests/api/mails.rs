//! Which mails the events make: each of the seven once, to the right person,
//! with its subject and its link; none twice; no reminder for a paid order
//! and no "expired" mail for an order the buyer cancelled.

use std::time::Duration;

use chrono::Utc;
use common::events::{OrderCancelled, PaymentRefunded, TicketRef};
use common::testing::{consumed, eventually};
use uuid::Uuid;

use crate::helpers::{PUBLIC_URL, WAIT, order, payment, spawn_app, the_one_mail, ticket, user};

#[tokio::test]
async fn each_of_the_seven_mails_goes_once_to_its_recipient_with_its_link() {
    // Arrange: a seller with two tickets; a buyer who reserves both.
    let app = spawn_app(Duration::from_secs(3)).await;
    let (buyer, seller) = (user("buyer"), user("seller"));
    app.publish(&buyer).await;
    app.publish(&seller).await;
    let (concert, opera) = (
        ticket(&seller, "Concert", 1550),
        ticket(&seller, "Opera", 2000),
    );
    app.publish(&concert).await;
    app.publish(&opera).await;
    // The concert's reservation runs out in 5 s (its reminder is due in 2 s);
    // the opera's is paid at once.
    let unpaid = order(&buyer, &concert, Utc::now() + Duration::from_secs(5));
    let paid = order(&buyer, &opera, Utc::now() + Duration::from_secs(600));

    // Act
    app.publish(&unpaid).await;
    app.publish(&paid).await;
    app.publish(&payment(&paid)).await;
    assert!(
        app.wait_for_mails(&buyer.email, "Your reservation of Concert runs out soon", 1)
            .await,
        "the reminder arrives"
    );
    let wait = (unpaid.expires_at - Utc::now())
        .to_std()
        .unwrap_or_default();
    tokio::time::sleep(wait + Duration::from_millis(100)).await;
    app.publish(&OrderCancelled {
        id: unpaid.id,
        version: 1,
        ticket: TicketRef { id: concert.0.id },
    })
    .await;
    let late_payment = Uuid::now_v7();
    app.publish(&PaymentRefunded {
        id: Uuid::now_v7(),
        order_id: unpaid.id,
        payment_id: late_payment,
        amount: 1550,
    })
    .await;

    // Assert
    assert!(app.wait_for_mails(&buyer.email, "Refund issued", 1).await);
    assert!(
        app.wait_for_mails(&buyer.email, "Reservation expired", 1)
            .await
    );
    assert!(
        app.wait_for_mails(&seller.email, "Your ticket sold", 1)
            .await
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let order_link = |id: Uuid| format!("{PUBLIC_URL}/orders/{id}");
    let ticket_link = |id: Uuid| format!("{PUBLIC_URL}/tickets/{id}");
    let home = format!("{PUBLIC_URL}/");
    the_one_mail(&app, &buyer.email, "Welcome to buytickets", &home);
    the_one_mail(&app, &seller.email, "Welcome to buytickets", &home);
    let confirmed = the_one_mail(
        &app,
        &buyer.email,
        "Reservation confirmed: Concert",
        &order_link(unpaid.id),
    );
    assert!(confirmed.text.contains("$15.50"), "{}", confirmed.text);
    the_one_mail(
        &app,
        &buyer.email,
        "Reservation confirmed: Opera",
        &order_link(paid.id),
    );
    the_one_mail(
        &app,
        &buyer.email,
        "Your reservation of Concert runs out soon",
        &order_link(unpaid.id),
    );
    let receipt = the_one_mail(
        &app,
        &buyer.email,
        "Payment received: Opera",
        &order_link(paid.id),
    );
    assert!(receipt.text.contains("$20.00"), "{}", receipt.text);
    assert!(
        receipt.text.contains(&paid.id.to_string()),
        "{}",
        receipt.text
    );
    the_one_mail(
        &app,
        &buyer.email,
        "Reservation expired: Concert",
        &ticket_link(concert.0.id),
    );
    let refund = the_one_mail(
        &app,
        &buyer.email,
        "Refund issued: $15.50",
        &order_link(unpaid.id),
    );
    assert!(
        refund.text.contains("after the reservation had ended"),
        "{}",
        refund.text
    );
    let sold = the_one_mail(
        &app,
        &seller.email,
        "Your ticket sold: Opera",
        &ticket_link(opera.0.id),
    );
    assert!(sold.text.contains("$20.00"), "{}", sold.text);
    assert_eq!(app.smtp.received().len(), 9, "nothing else was sent");
    assert_eq!(app.mails_with_status("sent").await, 9);
}

#[tokio::test]
async fn an_event_delivered_three_times_makes_one_mail() {
    let app = spawn_app(Duration::from_secs(60)).await;
    let (buyer, seller) = (user("buyer"), user("seller"));
    let concert = ticket(&seller, "Concert", 1550);
    let reserved = order(&buyer, &concert, Utc::now() + Duration::from_secs(600));
    let paid = payment(&reserved);

    for _ in 0..3 {
        app.publish(&buyer).await;
        app.publish(&seller).await;
        app.publish(&concert).await;
        app.publish(&reserved).await;
        app.publish(&paid).await;
    }

    assert!(
        app.wait_for_mails(&seller.email, "Your ticket sold", 1)
            .await
    );
    for subject in ["user.created", "order.created", "payment.created"] {
        assert!(
            consumed(&app.app.bus, "notifications", subject, WAIT).await,
            "{subject} consumed"
        );
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    for subject in ["Welcome", "Reservation confirmed", "Payment received"] {
        assert_eq!(app.mails(&buyer.email, subject).len(), 1, "{subject}");
    }
    assert_eq!(app.mails(&seller.email, "Welcome").len(), 1);
    assert_eq!(app.mails(&seller.email, "Your ticket sold").len(), 1);
    assert_eq!(app.smtp.received().len(), 5);
}

#[tokio::test]
async fn no_reminder_is_sent_for_an_order_paid_before_its_time() {
    // Arrange: two reservations whose reminders are due in 2 s.
    let app = spawn_app(Duration::from_secs(3)).await;
    let (buyer, seller) = (user("buyer"), user("seller"));
    let (paid_ticket, unpaid_ticket) = (
        ticket(&seller, "Paid", 1000),
        ticket(&seller, "Unpaid", 1000),
    );
    for event in [&buyer, &seller] {
        app.publish(event).await;
    }
    app.publish(&paid_ticket).await;
    app.publish(&unpaid_ticket).await;
    let expires_at = Utc::now() + Duration::from_secs(5);
    let paid = order(&buyer, &paid_ticket, expires_at);
    let unpaid = order(&buyer, &unpaid_ticket, expires_at);
    app.publish(&paid).await;
    app.publish(&unpaid).await;

    // Act: one is paid at once.
    app.publish(&payment(&paid)).await;

    // Assert: the other's reminder comes, so the scheduler ran past the
    // paid one's due time too.
    assert!(
        app.wait_for_mails(&buyer.email, "Payment received: Paid", 1)
            .await
    );
    assert!(
        app.wait_for_mails(&buyer.email, "Your reservation of Unpaid", 1)
            .await
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        app.mails(&buyer.email, "Your reservation of Paid")
            .is_empty()
    );
    assert_eq!(
        app.app
            .db
            .count("SELECT count(*) FROM mails WHERE kind = 'reminder'")
            .await,
        1
    );
    assert_eq!(app.app.db.count("SELECT count(*) FROM reminders").await, 0);
}

#[tokio::test]
async fn a_buyer_who_cancels_gets_no_expired_mail() {
    let app = spawn_app(Duration::from_secs(60)).await;
    let (buyer, seller) = (user("buyer"), user("seller"));
    let concert = ticket(&seller, "Concert", 1550);
    let reserved = order(&buyer, &concert, Utc::now() + Duration::from_secs(600));
    for event in [&buyer, &seller] {
        app.publish(event).await;
    }
    app.publish(&concert).await;
    app.publish(&reserved).await;

    app.publish(&OrderCancelled {
        id: reserved.id,
        version: 1,
        ticket: TicketRef { id: concert.0.id },
    })
    .await;

    let pool = &app.app.db.pool;
    let cancelled = eventually(WAIT, || async {
        sqlx::query_scalar::<_, String>("SELECT status FROM orders WHERE id = $1")
            .bind(reserved.id)
            .fetch_optional(pool)
            .await
            .expect("read the replica")
            .as_deref()
            == Some("cancelled")
    })
    .await;
    assert!(cancelled, "the cancellation was applied");
    assert!(
        app.wait_for_mails(&buyer.email, "Reservation confirmed", 1)
            .await
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(app.mails(&buyer.email, "Reservation expired").is_empty());
    assert_eq!(app.app.db.count("SELECT count(*) FROM mails").await, 3);
}
