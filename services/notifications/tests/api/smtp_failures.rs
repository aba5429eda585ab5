//! What happens when the SMTP server is away or refuses a mail: mails wait
//! and arrive once when it is back; a permanent refusal is recorded and not
//! tried again.

use std::time::Duration;

use common::testing::eventually;

use crate::helpers::{WAIT, spawn_app, user};

#[tokio::test]
async fn mails_wait_while_the_smtp_server_is_down_and_then_arrive_once() {
    // Arrange
    let mut app = spawn_app(Duration::from_secs(60)).await;
    app.smtp.stop().await;
    let users = [user("a"), user("b"), user("c")];

    // Act: three sign-ups while the server is down for 10 s.
    for u in &users {
        app.publish(u).await;
    }
    let pool = app.app.db.pool.clone();
    let tried = eventually(WAIT, || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM mails WHERE status = 'pending' AND attempts >= 2",
        )
        .fetch_one(&pool)
        .await
        .expect("count")
            == 3
    })
    .await;
    assert!(tried, "every mail was tried, and failed, more than once");
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(app.smtp.received().is_empty());
    app.smtp.resume().await;

    // Assert
    for u in &users {
        assert!(
            app.wait_for_mails(&u.email, "Welcome", 1).await,
            "{}",
            u.email
        );
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    for u in &users {
        assert_eq!(app.mails(&u.email, "Welcome").len(), 1, "{}", u.email);
    }
    assert_eq!(app.smtp.received().len(), 3);
    assert_eq!(app.mails_with_status("sent").await, 3);
    // Each mail's Message-ID is its row's, so a copy re-sent after a crash
    // would carry the same one.
    let ids: Vec<uuid::Uuid> = sqlx::query_scalar("SELECT id FROM mails")
        .fetch_all(&pool)
        .await
        .expect("mail ids");
    let mut expected: Vec<String> = ids.iter().map(|id| format!("{id}@shop.test")).collect();
    let mut got: Vec<String> = app
        .smtp
        .received()
        .into_iter()
        .map(|m| m.message_id)
        .collect();
    expected.sort();
    got.sort();
    assert_eq!(got, expected);
}

#[tokio::test]
async fn a_permanent_refusal_is_recorded_as_failed_and_not_retried() {
    // Arrange
    let app = spawn_app(Duration::from_secs(60)).await;
    let (refused, accepted) = (user("reject"), user("ok"));

    // Act
    app.publish(&refused).await;
    app.publish(&accepted).await;

    // Assert: the other mail goes; the refused one is failed after one try,
    // with the server's answer, and stays so after several retry periods.
    assert!(app.wait_for_mails(&accepted.email, "Welcome", 1).await);
    let pool = app.app.db.pool.clone();
    let failed = eventually(WAIT, || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM mails WHERE status = 'failed'")
            .fetch_one(&pool)
            .await
            .expect("count")
            == 1
    })
    .await;
    assert!(failed, "the refused mail is recorded as failed");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (recipient, attempts, error): (String, i32, Option<String>) =
        sqlx::query_as("SELECT recipient, attempts, last_error FROM mails WHERE status = 'failed'")
            .fetch_one(&pool)
            .await
            .expect("the failed mail");
    assert_eq!(recipient, refused.email);
    assert_eq!(attempts, 1);
    assert!(error.unwrap_or_default().contains("550"));
    assert_eq!(app.smtp.rcpt_attempts(&refused.email), 1, "not retried");
    assert!(app.mails(&refused.email, "Welcome").is_empty());
}
