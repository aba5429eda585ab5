//! Forms posted from another origin are refused with an error page; the
//! site's own forms and the APIs it calls for them go on working.

use reqwest::StatusCode;

use crate::helpers::spawn_site;

#[tokio::test]
async fn a_form_posted_from_another_site_or_a_sibling_subdomain_is_refused_with_a_page() {
    let site = spawn_site().await;
    let (_, browser) = site.signed_in();

    for (origin, fetch_site) in [
        ("https://evil.example", "cross-site"),
        // Same site, so SameSite cookies would go along; another origin still.
        ("https://staging.buytickets.dev", "same-site"),
    ] {
        let page = browser
            .post_from(
                origin,
                fetch_site,
                "/tickets/new",
                &[("title", "Forged"), ("price", "10")],
            )
            .await;

        assert_eq!(page.status, StatusCode::FORBIDDEN, "from {origin}");
        page.shows("sent from another site");
    }
}

#[tokio::test]
async fn the_site_s_own_forms_pass() {
    let site = spawn_site().await;
    let (_, browser) = site.signed_in();
    let origin = site.url("");

    let page = browser
        .post_from(
            &origin,
            "same-origin",
            "/tickets/new",
            &[("title", "Concert"), ("price", "10")],
        )
        .await;

    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert!(page.path.starts_with("/tickets/"), "{}", page.path);
}
