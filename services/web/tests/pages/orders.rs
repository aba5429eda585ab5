//! Buying: the order page with its countdown, one's orders, cancelling,
//! and a reservation that runs out.

use std::time::Duration;

use reqwest::{Method, StatusCode};

use crate::helpers::{order_reaches, spawn_site, spawn_site_with};

#[tokio::test]
async fn purchasing_a_ticket_opens_its_order_page_with_a_countdown_and_the_test_cards() {
    let site = spawn_site().await;
    let (_, seller) = site.signed_in();
    let (buyer_user, buyer) = site.signed_in();
    let ticket = seller.sell("Cup final", "99.99").await;

    let (order, page) = buyer.purchase(ticket).await;

    page.shows("<h1>Cup final</h1>")
        .shows("$99.99")
        .shows("Awaiting payment")
        .shows("data-countdown")
        .shows("data-seconds-left=\"")
        .shows("src=\"/static/countdown.js\"")
        .shows(&format!("action=\"/orders/{order}/pay\""))
        .shows("value=\"tok_visa\" checked")
        .shows("value=\"tok_mastercard\"")
        .shows("value=\"tok_chargeDeclined\"")
        .shows("Pay $99.99")
        .lacks("js.stripe.com");
    // Without JavaScript the time left is in the page: 15 minutes, give or
    // take the second the test took.
    assert!(
        page.html.contains(">15:00</time>") || page.html.contains(">14:59</time>"),
        "{}",
        page.html
    );
    let (status, body) = buyer
        .api(Method::GET, &format!("/api/orders/{order}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "created");
    assert_eq!(body["userId"], buyer_user.id.to_string());
    assert_eq!(body["ticket"]["id"], ticket.to_string());
}

#[tokio::test]
async fn my_orders_lists_each_order_with_its_status() {
    let site = spawn_site().await;
    let (_, seller) = site.signed_in();
    let (_, buyer) = site.signed_in();
    let kept = seller.sell("Opera night", "30").await;
    let dropped = seller.sell("Jazz trio", "12").await;
    buyer.purchase(kept).await;
    let (cancelled, _) = buyer.purchase(dropped).await;
    let after_cancel = buyer
        .post(&format!("/orders/{cancelled}/cancel"), &[])
        .await;
    after_cancel.shows("This order was cancelled.");
    assert!(order_reaches(&buyer, cancelled, "cancelled").await);

    let page = buyer.get("/orders").await;

    assert_eq!(page.status, StatusCode::OK);
    let row = |title: &str| -> String {
        let start = page.html.find(title).expect("listed");
        let end = page.html[start..].find("</tr>").expect("row end") + start;
        page.html[start..end].to_string()
    };
    assert!(
        row("Opera night").contains("Awaiting payment"),
        "{}",
        page.html
    );
    assert!(row("Opera night").contains("$30.00"));
    assert!(row("Jazz trio").contains("Cancelled"), "{}", page.html);
    let (_, other) = site.signed_in();
    other.get("/orders").await.shows("You have no orders yet");
}

#[tokio::test]
async fn my_orders_needs_a_signed_in_user() {
    let site = spawn_site().await;

    let page = site.browser().get("/orders").await;

    assert_eq!(page.path, "/auth/signin?next=%2Forders");
    page.shows("<h1>Sign in</h1>");
}

#[tokio::test]
async fn an_order_is_shown_only_to_its_buyer() {
    let site = spawn_site().await;
    let (_, seller) = site.signed_in();
    let (_, buyer) = site.signed_in();
    let (order, _) = buyer.purchase(seller.sell("Opera night", "30").await).await;

    let page = seller.get(&format!("/orders/{order}")).await;

    assert_eq!(page.status, StatusCode::FORBIDDEN);
    page.shows("This order belongs to someone else.")
        .lacks("Opera night");
}

#[tokio::test]
async fn when_the_time_runs_out_the_order_page_says_the_reservation_expired() {
    let site = spawn_site_with(Duration::from_secs(2)).await;
    let (_, seller) = site.signed_in();
    let (_, buyer) = site.signed_in();
    let ticket = seller.sell("Opera night", "30").await;
    let (order, page) = buyer.purchase(ticket).await;
    page.shows("data-countdown");

    tokio::time::sleep(Duration::from_millis(2500)).await;
    let page = buyer.get(&format!("/orders/{order}")).await;

    assert_eq!(page.status, StatusCode::OK);
    page.shows("This reservation expired.")
        .shows(">Expired</span>")
        .lacks("/pay\"")
        .lacks("data-countdown");
    let list = buyer.get("/orders").await;
    list.shows(">Expired</span>");
}
