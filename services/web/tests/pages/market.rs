//! The market as a seller and a buyer use it: event details on the form and
//! the ticket page, search on the home page, and the seller's "My tickets"
//! with each ticket's state and the totals, through a real sale.

use reqwest::StatusCode;

use crate::helpers::{WAIT, order_reaches, spawn_site};

#[tokio::test]
async fn a_ticket_listed_with_event_details_shows_them_and_search_finds_it() {
    let site = spawn_site().await;
    let (_, seller) = site.signed_in();
    let page = seller
        .post(
            "/tickets/new",
            &[
                ("title", "Two in the stalls"),
                ("price", "80"),
                ("eventName", "Tosca"),
                ("venue", "La Scala"),
                ("city", "Milan"),
                ("eventDate", "2099-06-01T20:00"),
                ("section", "Stalls"),
                ("row", "F"),
                ("seat", "12"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    page.shows("Tosca")
        .shows("La Scala, Milan")
        .shows("Mon 1 Jun 2099, 20:00 UTC")
        .shows("Section Stalls Row F Seat 12");
    seller.sell("Something else", "5").await;

    let found = site.browser().get("/?q=scala&sort=date").await;
    assert_eq!(found.status, StatusCode::OK);
    found.shows("Two in the stalls").lacks("Something else");
    let by_price = site.browser().get("/?minPrice=50&maxPrice=100").await;
    by_price.shows("Two in the stalls").lacks("Something else");
    let by_date = site.browser().get("/?from=2099-06-01&to=2099-06-01").await;
    by_date.shows("Two in the stalls").lacks("Something else");
    let none = site.browser().get("/?q=nowhere").await;
    none.shows("No tickets match your search.");
}

#[tokio::test]
async fn a_bad_search_is_shown_with_the_apis_reason() {
    let site = spawn_site().await;

    let page = site.browser().get("/?minPrice=abc").await;

    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    page.shows("Price must be a number greater than 0 with at most two decimals");
}

#[tokio::test]
async fn an_event_date_in_the_past_is_refused_next_to_its_field() {
    let site = spawn_site().await;
    let (_, seller) = site.signed_in();

    let page = seller
        .post(
            "/tickets/new",
            &[
                ("title", "Old"),
                ("price", "5"),
                ("eventDate", "2001-01-01T20:00"),
            ],
        )
        .await;

    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    page.shows("id=\"eventDate-error\">Event date must be in the future");
}

#[tokio::test]
async fn my_tickets_shows_each_state_the_totals_and_edit_links_only_where_editable() {
    let site = spawn_site().await;
    let (_, seller) = site.signed_in();
    let (_, buyer) = site.signed_in();
    let sold = seller.sell("Cup final", "99.50").await;
    let free = seller.sell("Chess open", "5").await;
    let (order, _) = buyer.purchase(sold).await;
    assert!(site.payments_knows(order, "created").await);
    buyer
        .post(&format!("/orders/{order}/pay"), &[("token", "tok_visa")])
        .await;
    assert!(order_reaches(&buyer, order, "complete").await);
    let shows_sold = common::testing::eventually(WAIT, || async {
        seller.get("/tickets/mine").await.html.contains("Sold on")
    })
    .await;
    assert!(shows_sold, "the sale reached the tickets service");

    let page = seller.get("/tickets/mine").await;

    assert_eq!(page.status, StatusCode::OK);
    page.shows("Sold on")
        .shows("for $99.50")
        .shows("Available")
        .shows("<dd id=\"total-sold\">1</dd>")
        .shows("<dd id=\"total-earned\">$99.50</dd>")
        .shows(&format!("/tickets/{free}/edit"))
        .lacks(&format!("/tickets/{sold}/edit\""));
    let ticket = seller.get(&format!("/tickets/{sold}")).await;
    ticket.shows("Sold").lacks("Reserved by a buyer");
    let anonymous = site.browser().get("/tickets/mine").await;
    assert!(
        anonymous.path.starts_with("/auth/signin"),
        "{}",
        anonymous.path
    );
}
