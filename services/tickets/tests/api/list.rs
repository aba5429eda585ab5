use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, error_fields, signed_in, spawn_app};

/// The ids of a list response, in order, and the path its `Link` header
/// points to for the next page, if any.
async fn page(app: &TestApp, path: &str) -> (Vec<Uuid>, Option<String>) {
    let response = app.get(path).await;
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    let next = response
        .headers()
        .get(reqwest::header::LINK)
        .and_then(|v| v.to_str().ok())
        .map(|link| {
            assert!(link.ends_with(r#">; rel="next""#), "{link}");
            link.trim_start_matches('<')
                .split('>')
                .next()
                .unwrap_or_default()
                .to_string()
        });
    let body: Vec<Value> = response.json().await.expect("a JSON array");
    let ids = body
        .iter()
        .map(|t| {
            t["id"]
                .as_str()
                .and_then(|id| Uuid::parse_str(id).ok())
                .expect("id")
        })
        .collect();
    (ids, next)
}

async fn create_tickets(app: &TestApp, count: usize) -> Vec<Uuid> {
    let (_, cookie) = signed_in();
    let mut ids = Vec::with_capacity(count);
    for n in 0..count {
        ids.push(
            app.create_ticket(&cookie, &format!("Ticket {n}"), 10.0)
                .await,
        );
    }
    ids
}

#[tokio::test]
async fn the_list_is_newest_first_and_leaves_out_reserved_tickets() {
    let app = spawn_app().await;
    let ids = create_tickets(&app, 3).await;
    sqlx::query("UPDATE tickets SET order_id = $2 WHERE id = $1")
        .bind(ids[1])
        .bind(Uuid::now_v7())
        .execute(&app.db.pool)
        .await
        .expect("reserve");

    let (listed, next) = page(&app, "/api/tickets").await;

    assert_eq!(listed, vec![ids[2], ids[0]]);
    assert_eq!(next, None, "everything fits one page");
}

#[tokio::test]
async fn the_list_renders_tickets_like_the_ticket_route() {
    let app = spawn_app().await;
    let (user, cookie) = signed_in();
    let id = app.create_ticket(&cookie, "Concert", 12.5).await;

    let body: Value = app.get("/api/tickets").await.json().await.expect("json");

    assert_eq!(
        body,
        json!([{"id": id, "title": "Concert", "price": 12.5, "userId": user.id, "version": 0, "status": "available"}])
    );
}

#[tokio::test]
async fn paging_follows_the_link_header_across_three_pages() {
    let app = spawn_app().await;
    let ids = create_tickets(&app, 5).await;

    let (first, next) = page(&app, "/api/tickets?limit=2").await;
    let next = next.expect("a second page");
    let (second, next) = page(&app, &next).await;
    let next = next.expect("a third page");
    let (third, last) = page(&app, &next).await;

    assert_eq!(first, vec![ids[4], ids[3]]);
    assert_eq!(second, vec![ids[2], ids[1]]);
    assert_eq!(third, vec![ids[0]]);
    assert_eq!(last, None, "no page after the third");
    assert_eq!(next, format!("/api/tickets?limit=2&before={}", ids[1]));
}

#[tokio::test]
async fn a_full_last_page_has_no_next_link() {
    let app = spawn_app().await;
    let ids = create_tickets(&app, 2).await;

    let (listed, next) = page(&app, "/api/tickets?limit=2").await;

    assert_eq!(listed, vec![ids[1], ids[0]]);
    assert_eq!(next, None);
}

#[tokio::test]
async fn the_default_page_holds_50_tickets() {
    let app = spawn_app().await;
    let (_, cookie) = signed_in();
    let creations = (0..51).map(|n| app.create_ticket(&cookie, "Bulk", f64::from(n) + 1.0));
    futures::future::join_all(creations).await;

    let (listed, next) = page(&app, "/api/tickets").await;

    assert_eq!(listed.len(), 50);
    assert!(
        next.is_some_and(|n| n.starts_with("/api/tickets?limit=50&before=")),
        "a link to the 51st"
    );
}

#[tokio::test]
async fn a_limit_out_of_range_or_not_a_number_is_400_on_limit() {
    let app = spawn_app().await;

    for limit in ["0", "101", "-5", "ten", ""] {
        let response = app.get(&format!("/api/tickets?limit={limit}")).await;

        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{limit:?}");
        let body: Value = response.json().await.expect("json");
        assert_eq!(error_fields(&body), vec!["limit"], "{limit:?}");
    }
}

#[tokio::test]
async fn a_before_that_is_not_an_id_is_400_on_before() {
    let app = spawn_app().await;

    let response = app.get("/api/tickets?before=yesterday").await;

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.expect("json");
    assert_eq!(error_fields(&body), vec!["before"]);
}
