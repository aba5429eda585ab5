use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{error_fields, signed_in, spawn_app};

#[tokio::test]
async fn updating_a_ticket_requires_a_signed_in_user() {
    let app = spawn_app().await;
    let (_, cookie) = signed_in();
    let id = app.create_ticket(&cookie, "Concert", 10.0).await;

    let response = app
        .put_ticket(
            None,
            &id.to_string(),
            &json!({"title": "Changed", "price": 20}),
        )
        .await;

    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.ticket(id).await["title"], "Concert");
}

#[tokio::test]
async fn updating_an_unknown_or_malformed_id_is_404() {
    let app = spawn_app().await;
    let (_, cookie) = signed_in();
    let body = json!({"title": "Changed", "price": 20});

    let unknown = app
        .put_ticket(Some(&cookie), &Uuid::now_v7().to_string(), &body)
        .await;
    let malformed = app.put_ticket(Some(&cookie), "nope", &body).await;

    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert_eq!(malformed.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn updating_someone_elses_ticket_is_403_and_changes_nothing() {
    let app = spawn_app().await;
    let (_, owner) = signed_in();
    let (_, stranger) = signed_in();
    let id = app.create_ticket(&owner, "Concert", 10.0).await;

    let response = app
        .put_ticket(
            Some(&stranger),
            &id.to_string(),
            &json!({"title": "Mine now", "price": 1}),
        )
        .await;

    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body, json!({"errors": [{"message": "Not allowed"}]}));
    let ticket = app.ticket(id).await;
    assert_eq!(
        (ticket["title"].clone(), ticket["version"].clone()),
        (json!("Concert"), json!(0))
    );
}

#[tokio::test]
async fn updating_a_reserved_ticket_is_400() {
    let app = spawn_app().await;
    let (_, cookie) = signed_in();
    let id = app.create_ticket(&cookie, "Concert", 10.0).await;
    sqlx::query("UPDATE tickets SET order_id = $2 WHERE id = $1")
        .bind(id)
        .bind(Uuid::now_v7())
        .execute(&app.db.pool)
        .await
        .expect("reserve");

    let response = app
        .put_ticket(
            Some(&cookie),
            &id.to_string(),
            &json!({"title": "Changed", "price": 20}),
        )
        .await;

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        body,
        json!({"errors": [{"message": "Cannot edit a reserved ticket"}]})
    );
    assert_eq!(app.ticket(id).await["title"], "Concert");
}

#[tokio::test]
async fn updating_validates_each_field_like_creating() {
    let app = spawn_app().await;
    let (_, cookie) = signed_in();
    let id = app.create_ticket(&cookie, "Concert", 10.0).await;

    let response = app
        .put_ticket(
            Some(&cookie),
            &id.to_string(),
            &json!({"title": "", "price": 1.234}),
        )
        .await;

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.expect("json");
    assert_eq!(error_fields(&body), vec!["title", "price"]);
}

#[tokio::test]
async fn updating_returns_the_ticket_one_version_up_and_publishes_ticket_updated() {
    let app = spawn_app().await;
    let (user, cookie) = signed_in();
    let id = app.create_ticket(&cookie, "Concert", 10.0).await;

    let response = app
        .put_ticket(
            Some(&cookie),
            &id.to_string(),
            &json!({"title": " Opera ", "price": 25.75}),
        )
        .await;

    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        body,
        json!({"id": id, "title": "Opera", "price": 25.75, "userId": user.id, "version": 1, "status": "available"})
    );
    assert_eq!(app.ticket(id).await, body);
    let updates = app.wait_for_published("ticket.updated", 1).await;
    assert_eq!(
        updates[0],
        json!({"id": id, "version": 1, "title": "Opera", "price": 2575, "userId": user.id})
    );
}

#[tokio::test]
async fn concurrent_updates_each_bump_the_version_exactly_once() {
    let app = spawn_app().await;
    let (_, cookie) = signed_in();
    let id = app.create_ticket(&cookie, "Concert", 10.0).await;

    let id_text = id.to_string();
    let updates = (1..=5).map(|n| {
        let (app, cookie, id_text) = (&app, &cookie, &id_text);
        async move {
            let body = json!({"title": format!("Edit {n}"), "price": n});
            app.put_ticket(Some(cookie), id_text, &body).await
        }
    });
    let statuses: Vec<StatusCode> = futures::future::join_all(updates)
        .await
        .iter()
        .map(reqwest::Response::status)
        .collect();

    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );
    assert_eq!(app.ticket(id).await["version"], 5);
    let events = app.wait_for_published("ticket.updated", 5).await;
    let versions: Vec<i64> = events
        .iter()
        .filter_map(|e| e["version"].as_i64())
        .collect();
    assert_eq!(versions, vec![1, 2, 3, 4, 5], "published in version order");
}
