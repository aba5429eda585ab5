//! Paying on the order page, through the real payments service (simulated
//! provider): a declined card, a card that pays and completes the order
//! (payments → payment.created → orders), and orders that can no longer be
//! paid.

use std::time::Duration;

use reqwest::{Method, StatusCode};

use crate::helpers::{order_reaches, spawn_site, spawn_site_with, spawn_stripe_site};

#[tokio::test]
async fn a_declined_card_shows_the_error_and_the_form_stays() {
    let site = spawn_site().await;
    let (_, seller) = site.signed_in();
    let (_, buyer) = site.signed_in();
    let (order, _) = buyer.purchase(seller.sell("Cup final", "99").await).await;
    assert!(site.payments_knows(order, "created").await);

    let page = buyer
        .post(
            &format!("/orders/{order}/pay"),
            &[("token", "tok_chargeDeclined")],
        )
        .await;

    assert_eq!(page.status, StatusCode::PAYMENT_REQUIRED);
    page.shows("<div class=\"alert\" role=\"alert\" id=\"payment-error\"><p>Your card was declined.</p></div>")
        .shows(&format!("action=\"/orders/{order}/pay\""))
        .shows("value=\"tok_chargeDeclined\" checked")
        .lacks("value=\"tok_visa\" checked")
        .shows("Awaiting payment");
    let payments = site.payments_of(order).await;
    assert_eq!(payments.len(), 1, "{payments:?}");
    assert_eq!(payments[0].0, "failed");
    let (_, body) = buyer
        .api(Method::GET, &format!("/api/orders/{order}"), None)
        .await;
    assert_eq!(body["status"], "created", "{body}");
}

#[tokio::test]
async fn paying_with_a_test_card_shows_the_order_complete() {
    let site = spawn_site().await;
    let (_, seller) = site.signed_in();
    let (_, buyer) = site.signed_in();
    let (order, _) = buyer.purchase(seller.sell("Cup final", "99").await).await;
    assert!(site.payments_knows(order, "created").await);

    let page = buyer
        .post(&format!("/orders/{order}/pay"), &[("token", "tok_visa")])
        .await;

    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert!(
        page.path.starts_with(&format!("/orders/{order}")),
        "{}",
        page.path
    );
    let page = if page.html.contains("Confirming your order") {
        // The orders service had not heard of the payment yet.
        assert!(order_reaches(&buyer, order, "complete").await);
        buyer.get(&format!("/orders/{order}")).await
    } else {
        page
    };
    page.shows("Payment received. Your order is complete.")
        .shows(">Complete</span>")
        .lacks("/pay\"")
        .lacks("countdown.js");
    let payments = site.payments_of(order).await;
    assert_eq!(payments.len(), 1, "{payments:?}");
    assert_eq!(payments[0].0, "succeeded");
    assert!(
        payments[0]
            .1
            .as_deref()
            .is_some_and(|id| id.starts_with("pi_sim_")),
        "{payments:?}"
    );
    let (_, body) = buyer
        .api(Method::GET, &format!("/api/orders/{order}"), None)
        .await;
    assert_eq!(body["status"], "complete", "{body}");
}

#[tokio::test]
async fn paying_without_choosing_a_card_asks_for_one_and_charges_nothing() {
    let site = spawn_site().await;
    let (_, seller) = site.signed_in();
    let (_, buyer) = site.signed_in();
    let (order, _) = buyer.purchase(seller.sell("Cup final", "99").await).await;
    // Payable, so that a charge would have been recorded.
    assert!(site.payments_knows(order, "created").await);

    let page = buyer.post(&format!("/orders/{order}/pay"), &[]).await;

    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    page.shows("Choose a card to pay with.")
        .shows(&format!("action=\"/orders/{order}/pay\""));
    assert_eq!(site.payments_of(order).await, vec![]);
}

#[tokio::test]
async fn paying_for_a_cancelled_order_is_refused_with_the_reason() {
    let site = spawn_site().await;
    let (_, seller) = site.signed_in();
    let (_, buyer) = site.signed_in();
    let (order, _) = buyer.purchase(seller.sell("Cup final", "99").await).await;
    buyer
        .post(&format!("/orders/{order}/cancel"), &[])
        .await
        .shows("This order was cancelled.");
    assert!(site.payments_knows(order, "cancelled").await);

    let page = buyer
        .post(&format!("/orders/{order}/pay"), &[("token", "tok_visa")])
        .await;

    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    page.shows("<p>Cannot pay for a cancelled order</p>")
        .shows("This order was cancelled.")
        .lacks("/pay\"");
    assert_eq!(site.payments_of(order).await, vec![]);
}

#[tokio::test]
async fn paying_after_the_reservation_ran_out_is_refused_with_the_reason() {
    let site = spawn_site_with(Duration::from_secs(2)).await;
    let (_, seller) = site.signed_in();
    let (_, buyer) = site.signed_in();
    let (order, _) = buyer.purchase(seller.sell("Cup final", "99").await).await;
    // Nobody reads the order meanwhile: the expiration service ends it,
    // orders cancels it and payments hears of that.
    assert!(site.payments_knows(order, "cancelled").await);

    let page = buyer
        .post(&format!("/orders/{order}/pay"), &[("token", "tok_visa")])
        .await;

    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    page.shows("<p>Cannot pay for a cancelled order</p>")
        .shows("This reservation expired.")
        .lacks("/pay\"");
    assert_eq!(site.payments_of(order).await, vec![]);
}

#[tokio::test]
async fn with_a_stripe_key_the_order_page_takes_the_card_with_stripe_elements() {
    let site = spawn_stripe_site().await;
    let (_, seller) = site.signed_in();
    let (_, buyer) = site.signed_in();
    let (order, page) = buyer.purchase(seller.sell("Cup final", "99").await).await;

    page.shows("data-stripe-key=\"pk_test_web_pages\"")
        .shows("<div id=\"card-element\" class=\"card-element\"></div>")
        .shows("<input type=\"hidden\" name=\"token\" value=\"\">")
        .shows("<script src=\"https://js.stripe.com/v3/\"></script>")
        .shows("src=\"/static/stripe-pay.js\"")
        .lacks("tok_visa");
    let response = reqwest::get(site.url(&format!("/orders/{order}")))
        .await
        .expect("GET");
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .expect("ascii")
        .to_string();
    assert!(
        csp.contains("script-src 'self' https://js.stripe.com"),
        "{csp}"
    );
}
