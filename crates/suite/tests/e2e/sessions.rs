//! Sessions across services: every service refuses a wrong, signed-out or
//! banned user's token, the same way, within a second of the change.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use common::session::CurrentUser;
use common::testing::{cookie_value, tokens::forged_tokens};

use crate::helpers::Suite;

/// One route of each authenticating service that needs a signed-in user.
const PROBES: [(&str, &str); 3] = [
    ("tickets", "/api/tickets/summary"),
    ("orders", "/api/orders"),
    ("payments", "/api/payments"),
];

async fn probe(suite: &Suite, path: &str, access: &str) -> (StatusCode, Value) {
    let client = reqwest::Client::new();
    let request = if path == "/api/payments" {
        client
            .post(suite.url(path))
            .json(&json!({"token": "tok_visa", "orderId": uuid::Uuid::now_v7()}))
    } else {
        client.get(suite.url(path))
    };
    let response = request
        .header("Cookie", format!("session={access}"))
        .send()
        .await
        .expect("request");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn sign_up(suite: &Suite, email: &str) -> (String, uuid::Uuid) {
    let response = reqwest::Client::new()
        .post(suite.url("/api/users/signup"))
        .json(&json!({"email": email, "password": "password1"}))
        .send()
        .await
        .expect("signup");
    assert_eq!(response.status(), StatusCode::CREATED);
    let access = cookie_value(&response, "session").expect("access cookie");
    let body: Value = response.json().await.expect("json");
    let id = body["id"]
        .as_str()
        .and_then(|i| i.parse().ok())
        .expect("id");
    (access, id)
}

async fn assert_accepted_everywhere(suite: &Suite, access: &str) {
    for (service, path) in PROBES {
        let (status, body) = probe(suite, path, access).await;
        assert!(
            status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
            "{service} refused a signed-in user: {status} {body}"
        );
    }
}

#[tokio::test]
async fn every_wrong_token_is_anonymous_on_every_service_and_none_is_a_5xx() {
    let suite = Suite::start(&[]).await;
    let user = CurrentUser {
        id: uuid::Uuid::now_v7(),
        email: "a@example.com".into(),
    };

    for (name, token) in forged_tokens(&user) {
        for (service, path) in PROBES {
            let (status, body) = probe(&suite, path, &token).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{name} on {service}: {body}"
            );
            assert_eq!(body, json!({"errors": [{"message": "Not signed in"}]}));
        }
    }
}

#[tokio::test]
async fn after_signout_the_old_access_cookie_is_401_on_every_service() {
    let suite = Suite::start(&[]).await;
    let (access, _) = sign_up(&suite, "leaver@example.com").await;
    assert_accepted_everywhere(&suite, &access).await;

    let signout = reqwest::Client::new()
        .post(suite.url("/api/users/signout"))
        .header("Cookie", format!("session={access}"))
        .send()
        .await
        .expect("signout");

    assert_eq!(signout.status(), StatusCode::NO_CONTENT);
    for (service, path) in PROBES {
        let (status, body) = probe(&suite, path, &access).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{service}: {body}");
    }
}

#[tokio::test]
async fn a_ban_is_refused_with_403_by_tickets_orders_and_payments_within_a_second() {
    let suite = Suite::start(&[("ADMIN_EMAILS", "admin@example.com")]).await;
    let (admin, _) = sign_up(&suite, "admin@example.com").await;
    let (access, user_id) = sign_up(&suite, "banned@example.com").await;
    assert_accepted_everywhere(&suite, &access).await;

    let ban = reqwest::Client::new()
        .post(suite.url(&format!("/api/users/{user_id}/ban")))
        .header("Cookie", format!("session={admin}"))
        .json(&json!({"reason": "chargebacks"}))
        .send()
        .await
        .expect("ban");
    let banned_at = Instant::now();
    assert_eq!(ban.status(), StatusCode::OK);

    let mut refused_after = Vec::new();
    for (service, path) in PROBES {
        loop {
            let (status, body) = probe(&suite, path, &access).await;
            if status == StatusCode::FORBIDDEN {
                assert_eq!(
                    body,
                    json!({"errors": [{"message": "This account is banned"}]})
                );
                refused_after.push((service, banned_at.elapsed()));
                break;
            }
            assert!(
                banned_at.elapsed() < Duration::from_secs(1),
                "{service} still answers {status} a second after the ban"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    for (service, after) in &refused_after {
        println!("{service} refused the banned user {after:?} after the ban answered");
    }
    assert!(
        refused_after
            .iter()
            .all(|(_, after)| *after < Duration::from_secs(1))
    );
}
