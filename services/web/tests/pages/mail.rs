//! `/dev/mail`: the development page listing the mails in `MAIL_DIR`, on
//! only when it is set.

use reqwest::StatusCode;

use crate::helpers::{spawn_site, spawn_site_with_mail};

/// A mail as lettre's file transport writes it (plain text and HTML).
const MAIL: &str = "From: buytickets <no-reply@buytickets.dev>\r\n\
To: buyer@example.com\r\n\
Subject: Reservation confirmed: Concert\r\n\
Date: Tue, 01 Dec 2026 11:00:00 +0000\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/alternative; boundary=\"b1\"\r\n\
\r\n\
--b1\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: 7bit\r\n\
\r\n\
Your reservation is confirmed.\r\n\
Pay before then to keep it:\r\n\
http://localhost:3000/orders/0193e0a4-5b6c-7d8e-9f00-112233445566\r\n\
--b1\r\n\
Content-Type: text/html; charset=utf-8\r\n\
\r\n\
<p>Your reservation is confirmed.</p>\r\n\
--b1--\r\n";

#[tokio::test]
async fn the_mail_page_lists_the_mails_and_shows_their_links() {
    let dir = std::env::temp_dir().join(format!("web-mail-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).expect("mail dir");
    let name = "0193e0a4-0000-7000-8000-000000000001.eml";
    std::fs::write(dir.join(name), MAIL).expect("write a mail");
    let site = spawn_site_with_mail(dir.clone()).await;
    let browser = site.browser();

    let list = browser.get("/dev/mail").await;
    let mail = browser.get(&format!("/dev/mail/{name}")).await;
    let outside = browser.get("/dev/mail/..%2Fsecret.eml").await;

    assert_eq!(list.status, StatusCode::OK);
    list.shows("buyer@example.com")
        .shows("Reservation confirmed: Concert")
        .shows(&format!("href=\"/dev/mail/{name}\""));
    assert_eq!(mail.status, StatusCode::OK);
    mail.shows("href=\"http://localhost:3000/orders/0193e0a4-5b6c-7d8e-9f00-112233445566\"");
    assert_eq!(outside.status, StatusCode::NOT_FOUND);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn without_a_mail_dir_there_is_no_mail_page() {
    let site = spawn_site().await;

    let page = site.browser().get("/dev/mail").await;

    assert_eq!(page.status, StatusCode::NOT_FOUND);
}
