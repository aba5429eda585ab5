//! Every route needs a signed-in user.

use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{User, spawn_app};

#[tokio::test]
async fn every_orders_route_refuses_an_anonymous_caller_with_401() {
    let app = spawn_app().await;
    let ticket = app.ticket().await;
    let order = app.create_order(&User::new(), ticket).await;
    let one = format!("/api/orders/{order}");

    let responses = [
        (
            "POST",
            app.post_order_body(None, &json!({"ticketId": ticket}))
                .await,
        ),
        ("GET list", app.get("/api/orders", None).await),
        ("GET one", app.get(&one, None).await),
        ("DELETE", app.delete(&one, None).await),
    ];

    for (route, response) in responses {
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{route}");
        let body: Value = response.json().await.expect("json");
        assert_eq!(
            body,
            json!({"errors": [{"message": "Not signed in"}]}),
            "{route}"
        );
    }
    assert_eq!(app.order_row(order).await.0, "created", "nothing changed");
}

#[tokio::test]
async fn a_forged_session_cookie_is_anonymous() {
    let app = spawn_app().await;

    let response = app
        .client
        .request(reqwest::Method::GET, "/api/orders")
        .header("Cookie", format!("session=x.{}.y", Uuid::now_v7()))
        .send()
        .await
        .expect("request");

    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}
