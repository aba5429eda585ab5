//! The listings' search: text, date and price filters, the three orders with
//! their cursors, the seller's own tickets, and a 400 per bad parameter.

use chrono::{Duration, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, error_fields, signed_in, spawn_app};

/// Lists a ticket with event details and returns its id.
async fn list(app: &TestApp, cookie: &str, body: Value) -> Uuid {
    let response = app.post_ticket(Some(cookie), &body).await;
    assert_eq!(response.status(), reqwest::StatusCode::CREATED);
    let body: Value = response.json().await.expect("json");
    body["id"].as_str().expect("id").parse().expect("uuid")
}

fn in_days(days: i64) -> String {
    (Utc::now() + Duration::days(days)).to_rfc3339()
}

/// The titles of one page, and the next page's link if any.
async fn titles(app: &TestApp, path: &str, cookie: Option<&str>) -> (Vec<String>, Option<String>) {
    let mut request = app.client.request(reqwest::Method::GET, path);
    if let Some(cookie) = cookie {
        request = request.header("Cookie", cookie);
    }
    let response = request.send().await.expect("request");
    assert_eq!(response.status(), reqwest::StatusCode::OK, "{path}");
    let next = response.headers().get("link").map(|link| {
        let link = link.to_str().expect("ascii");
        link[link.find('<').expect("<") + 1..link.find('>').expect(">")].to_string()
    });
    let body: Vec<Value> = response.json().await.expect("json");
    let titles = body
        .iter()
        .map(|t| t["title"].as_str().expect("title").to_string())
        .collect();
    (titles, next)
}

/// Every title of every page, following the links.
async fn all_pages(app: &TestApp, path: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let mut next = Some(path.to_string());
    while let Some(path) = next {
        let (page, link) = titles(app, &path, None).await;
        seen.extend(page);
        next = link;
    }
    seen
}

async fn three_events(app: &TestApp) {
    let (_, cookie) = signed_in();
    list(
        app,
        &cookie,
        json!({"title": "Stalls pair", "price": 80, "eventName": "Tosca",
        "venue": "La Scala", "city": "Milan", "eventDate": in_days(30), "section": "Stalls",
        "row": "F", "seat": "12"}),
    )
    .await;
    list(
        app,
        &cookie,
        json!({"title": "Standing", "price": 35.5, "eventName": "Radiohead",
        "venue": "O2 Arena", "city": "London", "eventDate": in_days(10)}),
    )
    .await;
    list(
        app,
        &cookie,
        json!({"title": "Box seat", "price": 120, "eventName": "Hamlet",
        "venue": "Globe", "city": "London", "eventDate": in_days(60)}),
    )
    .await;
}

#[tokio::test]
async fn q_finds_tickets_by_event_name_title_venue_or_city() {
    let app = spawn_app().await;
    three_events(&app).await;

    for (q, expected) in [
        ("tosca", vec!["Stalls pair"]),
        ("standing", vec!["Standing"]),
        ("scala", vec!["Stalls pair"]),
        ("london", vec!["Box seat", "Standing"]),
        ("nothing-like-this", vec![]),
    ] {
        let (found, _) = titles(&app, &format!("/api/tickets?q={q}"), None).await;
        assert_eq!(found, expected, "q={q}");
    }
}

#[tokio::test]
async fn from_and_to_keep_events_within_the_dates() {
    let app = spawn_app().await;
    three_events(&app).await;

    let path = format!(
        "/api/tickets?sort=date&from={}&to={}",
        urlencode(&in_days(20)),
        urlencode(&in_days(90))
    );
    let (found, _) = titles(&app, &path, None).await;
    assert_eq!(found, vec!["Stalls pair", "Box seat"]);
}

#[tokio::test]
async fn min_and_max_price_keep_prices_within_the_range() {
    let app = spawn_app().await;
    three_events(&app).await;

    let (found, _) = titles(
        &app,
        "/api/tickets?sort=price&minPrice=35.5&maxPrice=80",
        None,
    )
    .await;
    assert_eq!(found, vec!["Standing", "Stalls pair"]);
}

#[tokio::test]
async fn sort_orders_by_date_price_or_newest() {
    let app = spawn_app().await;
    three_events(&app).await;

    for (sort, expected) in [
        ("date", vec!["Standing", "Stalls pair", "Box seat"]),
        ("price", vec!["Standing", "Stalls pair", "Box seat"]),
        ("newest", vec!["Box seat", "Standing", "Stalls pair"]),
    ] {
        let (found, _) = titles(&app, &format!("/api/tickets?sort={sort}"), None).await;
        assert_eq!(found, expected, "sort={sort}");
    }
    let (by_price, _) = titles(&app, "/api/tickets?sort=price&q=london", None).await;
    assert_eq!(by_price, vec!["Standing", "Box seat"]);
}

#[tokio::test]
async fn every_order_pages_through_all_tickets_once_even_while_tickets_are_listed() {
    let app = spawn_app().await;
    let (_, cookie) = signed_in();
    // Equal prices and dates, so that the id alone breaks the ties.
    let date = in_days(5);
    for n in 0..7 {
        list(
            &app,
            &cookie,
            json!({"title": format!("T{n}"), "price": 10 + n % 2,
            "eventDate": date}),
        )
        .await;
    }
    for sort in ["date", "price", "newest"] {
        let mut seen = Vec::new();
        let mut next = Some(format!("/api/tickets?limit=2&sort={sort}"));
        let mut pages = 0;
        while let Some(path) = next {
            let (page, link) = titles(&app, &path, None).await;
            seen.extend(page);
            next = link;
            pages += 1;
            // A ticket listed mid-way must not shift what the cursor skips.
            list(
                &app,
                &cookie,
                json!({"title": format!("late {sort} {pages}"), "price": 99,
                "eventDate": in_days(400)}),
            )
            .await;
        }
        let early: Vec<&String> = seen.iter().filter(|t| t.starts_with('T')).collect();
        let mut unique = early.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(early.len(), 7, "sort={sort}: {seen:?}");
        assert_eq!(unique.len(), 7, "sort={sort}: {seen:?}");
    }
}

#[tokio::test]
async fn tickets_whose_event_has_passed_leave_the_listings() {
    let app = spawn_app().await;
    three_events(&app).await;
    sqlx::query(
        "UPDATE tickets SET event_date = now() - interval '1 hour' WHERE title = 'Standing'",
    )
    .execute(&app.db.pool)
    .await
    .expect("move the event into the past");

    let found = all_pages(&app, "/api/tickets?limit=1").await;
    assert_eq!(found, vec!["Box seat", "Stalls pair"]);
}

#[tokio::test]
async fn an_event_date_must_be_in_the_future_and_rfc_3339() {
    let app = spawn_app().await;
    let (_, cookie) = signed_in();

    for (date, message) in [
        (json!(in_days(-1)), "Event date must be in the future"),
        (
            json!("2030-01-01"),
            "Event date must be an RFC 3339 date and time with an offset",
        ),
        (
            json!(12),
            "Event date must be an RFC 3339 date and time with an offset",
        ),
    ] {
        let response = app
            .post_ticket(
                Some(&cookie),
                &json!({"title": "X", "price": 1, "eventDate": date}),
            )
            .await;
        assert_eq!(
            response.status(),
            reqwest::StatusCode::BAD_REQUEST,
            "{date}"
        );
        let body: Value = response.json().await.expect("json");
        assert_eq!(error_fields(&body), vec!["eventDate".to_string()], "{date}");
        assert_eq!(body["errors"][0]["message"], message);
    }
}

#[tokio::test]
async fn a_ticket_answers_its_event_details_and_an_edit_keeps_the_ones_not_sent() {
    let app = spawn_app().await;
    let (_, cookie) = signed_in();
    let date = "2099-07-01T19:30:00+02:00";
    let id = list(
        &app,
        &cookie,
        json!({"title": "Pair", "price": 50, "eventName": "Aida",
        "venue": "Arena", "city": "Verona", "eventDate": date, "section": "A", "row": "3",
        "seat": "7", "unknown": "ignored"}),
    )
    .await;

    let response = app
        .put_ticket(
            Some(&cookie),
            &id.to_string(),
            &json!({"title": "Pair!", "price": 55, "seat": null}),
        )
        .await;
    assert_eq!(response.status(), reqwest::StatusCode::OK);

    let ticket = app.ticket(id).await;
    assert_eq!(
        ticket,
        json!({"id": id, "title": "Pair!", "price": 55.0, "userId": ticket["userId"],
               "version": 1, "status": "available", "eventName": "Aida", "venue": "Arena",
               "city": "Verona", "eventDate": "2099-07-01T17:30:00Z", "section": "A", "row": "3"})
    );
    let updates = app.wait_for_published("ticket.updated", 1).await;
    assert_eq!(updates[0]["eventDate"], "2099-07-01T17:30:00Z");
    assert_eq!(updates[0]["eventName"], "Aida");
}

#[tokio::test]
async fn every_bad_parameter_is_a_400_on_its_field() {
    let app = spawn_app().await;
    for (query, field) in [
        ("sort=cheapest", "sort"),
        ("from=yesterday", "from"),
        ("to=2030-13-01T00:00:00Z", "to"),
        ("from=2030-02-01T00:00:00Z&to=2030-01-01T00:00:00Z", "to"),
        ("minPrice=-1", "minPrice"),
        ("maxPrice=abc", "maxPrice"),
        ("minPrice=10&maxPrice=5", "maxPrice"),
        ("cursor=garbage", "cursor"),
        ("limit=0", "limit"),
        ("seller=someone", "seller"),
        ("before=nope", "before"),
    ] {
        let response = app.get(&format!("/api/tickets?{query}")).await;
        assert_eq!(
            response.status(),
            reqwest::StatusCode::BAD_REQUEST,
            "{query}"
        );
        let body: Value = response.json().await.expect("json");
        assert_eq!(error_fields(&body), vec![field.to_string()], "{query}");
    }
    let long = "x".repeat(201);
    let response = app.get(&format!("/api/tickets?q={long}")).await;
    assert_eq!(response.status(), reqwest::StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn seller_me_lists_every_ticket_of_the_signed_in_seller_only() {
    let app = spawn_app().await;
    let (_, mine) = signed_in();
    let (_, theirs) = signed_in();
    app.create_ticket(&mine, "Mine", 10.0).await;
    app.create_ticket(&theirs, "Theirs", 10.0).await;

    let (found, _) = titles(&app, "/api/tickets?seller=me", Some(&mine)).await;
    assert_eq!(found, vec!["Mine"]);
    let anonymous = app.get("/api/tickets?seller=me").await;
    assert_eq!(anonymous.status(), reqwest::StatusCode::UNAUTHORIZED);
}

fn urlencode(text: &str) -> String {
    text.replace('+', "%2B").replace(':', "%3A")
}

#[tokio::test]
async fn a_word_with_many_matches_is_searched_in_the_same_order() {
    let app = spawn_app().await;
    // More matches than the store sorts by itself, so the order's index is walked.
    sqlx::query(
        "INSERT INTO tickets (id, title, price, user_id, event_date)
         SELECT gen_random_uuid(), 'Common ' || n, 100 + (n * 37) % 5000, gen_random_uuid(),
                now() + n * interval '1 hour'
         FROM generate_series(1, 1200) AS n",
    )
    .execute(&app.db.pool)
    .await
    .expect("seed");

    let (by_price, next) = titles(&app, "/api/tickets?q=common&sort=price&limit=3", None).await;
    let (by_date, _) = titles(&app, "/api/tickets?q=common&sort=date&limit=3", None).await;

    // The cheapest of the seeded prices, computed the same way.
    let mut expected: Vec<(i64, i64)> = (1..=1200).map(|n| (100 + (n * 37) % 5000, n)).collect();
    expected.sort();
    let cheapest: Vec<String> = expected[..3]
        .iter()
        .map(|(_, n)| format!("Common {n}"))
        .collect();
    assert_eq!(by_price, cheapest, "sorted by price");
    assert!(next.is_some(), "more pages");
    assert_eq!(by_date, vec!["Common 1", "Common 2", "Common 3"]);
}
