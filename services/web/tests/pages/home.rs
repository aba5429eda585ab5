//! The home page: the tickets for sale, a page at a time.

use reqwest::StatusCode;

use crate::helpers::{PER_PAGE, spawn_site};

#[tokio::test]
async fn the_home_page_lists_the_tickets_for_sale_with_their_prices_newest_first_in_pages() {
    let site = spawn_site().await;
    let (_, seller) = site.signed_in();
    for (title, price) in [
        ("Opera night", "30"),
        ("Jazz trio", "12.5"),
        ("Cup final", "99.99"),
        ("Chess open", "5"),
    ] {
        seller.sell(title, price).await;
    }
    assert_eq!(PER_PAGE, 3, "four tickets make two pages");

    let first = site.browser().get("/").await;
    assert_eq!(first.status, StatusCode::OK);
    first
        .shows("Chess open")
        .shows("$5.00")
        .shows("Cup final")
        .shows("$99.99")
        .shows("Jazz trio")
        .shows("$12.50")
        .lacks("Opera night")
        .shows("Sign in")
        .lacks("Sell a ticket");
    let newest = first.html.find("Chess open").expect("listed");
    let older = first.html.find("Jazz trio").expect("listed");
    assert!(newest < older, "newest first");

    let link_start = first
        .html
        .find("/?before=")
        .expect("a link to the next page");
    let link: String = first.html[link_start..]
        .chars()
        .take_while(|c| *c != '"')
        .collect();
    let second = site.browser().get(&link).await;
    assert_eq!(second.status, StatusCode::OK);
    second
        .shows("Opera night")
        .shows("$30.00")
        .lacks("Chess open")
        .lacks("/?before=")
        .shows("Newest");
}

#[tokio::test]
async fn a_signed_in_visitor_is_offered_to_sell_a_ticket_and_an_empty_market_says_so() {
    let site = spawn_site().await;
    let (user, browser) = site.signed_in();

    let page = browser.get("/").await;

    assert_eq!(page.status, StatusCode::OK);
    page.shows("href=\"/tickets/new\"")
        .shows("Sell a ticket")
        .shows(&user.email)
        .shows("No tickets for sale right now");
}

#[tokio::test]
async fn titles_are_escaped() {
    let site = spawn_site().await;
    let (_, seller) = site.signed_in();
    seller.sell("<script>alert(1)</script> & co", "10").await;

    let page = site.browser().get("/").await;

    page.shows("&#60;script&#62;alert(1)&#60;/script&#62; &#38; co")
        .lacks("<script>alert(1)");
}
