//! Selling, showing, buying and editing tickets through the pages.

use reqwest::{Method, StatusCode};

use crate::helpers::{no_redirects, spawn_site};

#[tokio::test]
async fn selling_a_ticket_leads_to_its_page() {
    let site = spawn_site().await;
    let (_, seller) = site.signed_in();

    let page = seller
        .post(
            "/tickets/new",
            &[("title", "  Opera night "), ("price", "25.5")],
        )
        .await;

    assert_eq!(page.status, StatusCode::OK);
    let id = page.id_in_path("/tickets/");
    page.shows("<h1>Opera night</h1>")
        .shows("$25.50")
        .shows("You are selling this ticket")
        .shows(&format!("href=\"/tickets/{id}/edit\""));
    let (status, ticket) = seller
        .api(Method::GET, &format!("/api/tickets/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ticket["title"], "Opera night");
    assert_eq!(ticket["price"], 25.5);
}

#[tokio::test]
async fn a_bad_ticket_shows_each_error_next_to_its_field_and_keeps_the_input() {
    let site = spawn_site().await;
    let (_, seller) = site.signed_in();

    let page = seller
        .post("/tickets/new", &[("title", "   "), ("price", "12.345")])
        .await;

    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    page.shows("id=\"title-error\">Title is required</p>")
        .shows("id=\"price-error\">Price must be a number greater than 0 with at most two decimals</p>")
        .shows("value=\"12.345\"");
    let (_, tickets) = seller.api(Method::GET, "/api/tickets", None).await;
    assert_eq!(tickets, serde_json::json!([]), "nothing was listed");
}

#[tokio::test]
async fn selling_needs_a_signed_in_user() {
    let site = spawn_site().await;

    let response = no_redirects()
        .get(site.url("/tickets/new"))
        .send()
        .await
        .expect("GET");

    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        response.headers()["location"],
        "/api/users/refresh?next=%2Ftickets%2Fnew",
        "first to renew the session, which without a refresh cookie goes to sign in"
    );
    let page = site.browser().get("/tickets/new").await;
    assert_eq!(page.path, "/auth/signin?next=%2Ftickets%2Fnew");
    page.shows("name=\"next\" value=\"/tickets/new\"");
}

#[tokio::test]
async fn a_ticket_page_offers_purchase_to_others_and_sign_in_to_visitors() {
    let site = spawn_site().await;
    let (_, seller) = site.signed_in();
    let (_, buyer) = site.signed_in();
    let id = seller.sell("Cup final", "99").await;

    let as_buyer = buyer.get(&format!("/tickets/{id}")).await;
    let as_visitor = site.browser().get(&format!("/tickets/{id}")).await;

    as_buyer
        .shows(&format!("action=\"/tickets/{id}/purchase\""))
        .shows(">Purchase</button>")
        .lacks("/edit\"");
    as_visitor.shows("Sign in to purchase").lacks("/purchase\"");
}

#[tokio::test]
async fn an_unknown_ticket_is_a_404_page() {
    let site = spawn_site().await;

    let unknown = site
        .browser()
        .get(&format!("/tickets/{}", uuid::Uuid::now_v7()))
        .await;
    let malformed = site.browser().get("/tickets/not-an-id").await;

    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    unknown.shows("<h1>Not found</h1>");
    assert_eq!(malformed.status, StatusCode::NOT_FOUND);
    malformed.shows("<h1>Not found</h1>");
}

#[tokio::test]
async fn a_seller_edits_a_free_ticket() {
    let site = spawn_site().await;
    let (_, seller) = site.signed_in();
    let id = seller.sell("Jazz trio", "12").await;

    let form = seller.get(&format!("/tickets/{id}/edit")).await;
    form.shows("value=\"Jazz trio\"").shows("value=\"12.00\"");
    let page = seller
        .post(
            &format!("/tickets/{id}/edit"),
            &[("title", "Jazz quartet"), ("price", "14")],
        )
        .await;

    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.path, format!("/tickets/{id}"));
    page.shows("<h1>Jazz quartet</h1>").shows("$14.00");
}

#[tokio::test]
async fn only_the_seller_may_edit() {
    let site = spawn_site().await;
    let (_, seller) = site.signed_in();
    let (_, other) = site.signed_in();
    let id = seller.sell("Jazz trio", "12").await;

    let form = other.get(&format!("/tickets/{id}/edit")).await;
    let submit = other
        .post(
            &format!("/tickets/{id}/edit"),
            &[("title", "Mine now"), ("price", "1")],
        )
        .await;

    assert_eq!(form.status, StatusCode::FORBIDDEN);
    form.shows("Only the seller can edit this ticket.");
    assert_eq!(submit.status, StatusCode::FORBIDDEN);
    let (_, ticket) = seller
        .api(Method::GET, &format!("/api/tickets/{id}"), None)
        .await;
    assert_eq!(ticket["title"], "Jazz trio");
}

#[tokio::test]
async fn editing_is_refused_with_a_clear_message_while_the_ticket_is_reserved() {
    let site = spawn_site().await;
    let (_, seller) = site.signed_in();
    let (_, buyer) = site.signed_in();
    let id = seller.sell("Opera night", "30").await;
    buyer.purchase(id).await;
    // The tickets service learns of the order through order.created.
    let reserved = common::testing::eventually(crate::helpers::WAIT, || async {
        let (_, ticket) = seller
            .api(Method::GET, &format!("/api/tickets/{id}"), None)
            .await;
        ticket.get("orderId").is_some()
    })
    .await;
    assert!(reserved, "the ticket shows its order");

    let form = seller.get(&format!("/tickets/{id}/edit")).await;
    let submit = seller
        .post(
            &format!("/tickets/{id}/edit"),
            &[("title", "Changed"), ("price", "31")],
        )
        .await;

    assert_eq!(form.status, StatusCode::OK);
    form.shows(
        "This ticket is reserved by a buyer, so it cannot be edited until the reservation ends.",
    )
    .shows("<fieldset class=\"plain\" disabled>");
    assert_eq!(submit.status, StatusCode::BAD_REQUEST);
    submit
        .shows("Cannot edit a reserved ticket")
        .shows("value=\"Changed\"");
    let (_, ticket) = seller
        .api(Method::GET, &format!("/api/tickets/{id}"), None)
        .await;
    assert_eq!(ticket["title"], "Opera night");
    let page = seller.get(&format!("/tickets/{id}")).await;
    page.shows("Reserved by a buyer");
}

#[tokio::test]
async fn a_seller_cannot_buy_their_own_ticket() {
    let site = spawn_site().await;
    let (_, seller) = site.signed_in();
    let id = seller.sell("Opera night", "30").await;

    let page = seller.post(&format!("/tickets/{id}/purchase"), &[]).await;

    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert_eq!(page.path, format!("/tickets/{id}/purchase"));
    page.shows("You cannot buy your own ticket");
    let (_, orders) = seller.api(Method::GET, "/api/orders", None).await;
    assert_eq!(orders, serde_json::json!([]));
}
