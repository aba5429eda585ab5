//! `spawn_site()`: auth, tickets, orders and payments (their real
//! `startup::build`, each with a database of its own) and the web service,
//! merged on one free port with `API_URL` pointing at it, as the local suite
//! serves them. Payments run with the simulated provider (no Stripe key),
//! which honours Stripe's test tokens: `tok_visa` pays, `tok_chargeDeclined`
//! is declined. Sites with short reservations run the expiration service
//! too, so that reservations end as they do when deployed.

use std::time::Duration;

use common::lifecycle::Lifecycle;
use common::session::CurrentUser;
use common::testing::{self, TestDatabase, TestEnv, eventually};
use reqwest::StatusCode;
use reqwest::header::{COOKIE, HeaderMap, HeaderValue};
use serde_json::{Value, json};
use uuid::Uuid;

/// The admin of every site under test (`ADMIN_EMAILS`).
pub(crate) const ADMIN: &str = "admin@example.com";

/// How long a test waits for something asynchronous (events, listeners).
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// Tickets per home page in these tests: small, so paging shows.
pub(crate) const PER_PAGE: u32 = 3;

pub(crate) struct Site {
    pub(crate) base: String,
    /// The payments service's database, to see what it recorded.
    payments_db: TestDatabase,
    lifecycle: Lifecycle,
    _databases: [TestDatabase; 3],
}

impl Drop for Site {
    fn drop(&mut self) {
        self.lifecycle.shutdown.cancel();
    }
}

/// How a site is set up.
struct Options {
    order_expiration: Duration,
    /// Runs the expiration service. Only sites whose reservations end within
    /// a test do: its jobs live in Redis until their order expires.
    expiration: bool,
    stripe_publishable_key: Option<&'static str>,
    /// Where the development mail page reads mails from, if it is on.
    mail_dir: Option<std::path::PathBuf>,
}

/// A site whose orders hold their ticket for 15 minutes.
pub(crate) async fn spawn_site() -> Site {
    start(Options {
        order_expiration: Duration::from_secs(15 * 60),
        expiration: false,
        stripe_publishable_key: None,
        mail_dir: None,
    })
    .await
}

/// A site whose orders hold their ticket for `order_expiration`, with the
/// expiration service cancelling them when it runs out.
pub(crate) async fn spawn_site_with(order_expiration: Duration) -> Site {
    start(Options {
        order_expiration,
        expiration: true,
        stripe_publishable_key: None,
        mail_dir: None,
    })
    .await
}

/// A site whose order pages take cards with Stripe Elements (the payments
/// service itself still runs its simulated provider).
pub(crate) async fn spawn_stripe_site() -> Site {
    start(Options {
        order_expiration: Duration::from_secs(15 * 60),
        expiration: false,
        stripe_publishable_key: Some("pk_test_web_pages"),
        mail_dir: None,
    })
    .await
}

/// A site with the development mail page on, reading `mail_dir`.
pub(crate) async fn spawn_site_with_mail(mail_dir: std::path::PathBuf) -> Site {
    start(Options {
        order_expiration: Duration::from_secs(15 * 60),
        expiration: false,
        stripe_publishable_key: None,
        mail_dir: Some(mail_dir),
    })
    .await
}

async fn start(options: Options) -> Site {
    let env = TestEnv::new("web-tests").await;
    let databases = [
        TestDatabase::create_empty().await,
        TestDatabase::create_empty().await,
        TestDatabase::create_empty().await,
    ];
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let common = env.common_settings();
    let settings = buytickets_suite::Settings {
        auth: auth::config::Settings {
            common: common.clone(),
            database_url: databases[0].url.clone(),
            front_door: auth::config::FrontDoorSettings::new(
                testing::redis_url(),
                env.prefix.clone(),
            ),
            admin_emails: vec![ADMIN.into()],
        },
        tickets: tickets::config::Settings {
            common: common.clone(),
            database_url: databases[1].url.clone(),
        },
        orders: orders::config::Settings {
            common: common.clone(),
            database_url: databases[2].url.clone(),
            order_expiration: options.order_expiration,
            sweep: orders::config::SweepSettings::default(),
        },
        payments: payments::config::Settings {
            common: common.clone(),
            database_url: env.db.url.clone(),
            stripe: payments::config::StripeSettings {
                secret_key: None,
                api_base: payments::config::DEFAULT_STRIPE_API_BASE.into(),
                currency: "usd".into(),
                webhook_secret: None,
            },
        },
        expiration: options.expiration.then(|| expiration::config::Settings {
            common: common.clone(),
            redis_url: testing::redis_url(),
            queue: format!("{}:expiration", env.prefix),
        }),
        notifications: None,
        web: web::config::Settings {
            process: common.process,
            apis: web::config::ApiUrls::all(base.parse().expect("base url")),
            stripe_publishable_key: options.stripe_publishable_key.map(str::to_string),
            tickets_per_page: PER_PAGE,
            api_timeout: Duration::from_secs(5),
            mail_dir: options.mail_dir.clone(),
        },
    };
    let lifecycle = Lifecycle::new();
    let app = buytickets_suite::build(&settings, &lifecycle)
        .await
        .expect("the site starts")
        .into_app();
    let serving = lifecycle.clone();
    tokio::spawn(async move {
        let _ = serving.serve(listener, app, Duration::from_secs(5)).await;
    });
    Site {
        base,
        payments_db: env.db,
        lifecycle,
        _databases: databases,
    }
}

/// A page as a browser got it, after following redirects.
pub(crate) struct Page {
    pub(crate) status: StatusCode,
    /// Where the browser ended up.
    pub(crate) path: String,
    pub(crate) html: String,
}

impl Page {
    /// Asserts that the HTML contains `text`, showing the page if not.
    pub(crate) fn shows(&self, text: &str) -> &Self {
        assert!(
            self.html.contains(text),
            "expected {text:?} on {} ({}):\n{}",
            self.path,
            self.status,
            self.html
        );
        self
    }

    pub(crate) fn lacks(&self, text: &str) -> &Self {
        assert!(
            !self.html.contains(text),
            "did not expect {text:?} on {}:\n{}",
            self.path,
            self.html
        );
        self
    }

    /// The id in a path like `/orders/{id}`.
    pub(crate) fn id_in_path(&self, prefix: &str) -> Uuid {
        let rest = self
            .path
            .strip_prefix(prefix)
            .unwrap_or_else(|| panic!("{} does not start with {prefix}", self.path));
        Uuid::parse_str(rest.split(['/', '?']).next().unwrap_or_default()).expect("an id")
    }
}

/// A browser without JavaScript: follows redirects, keeps cookies.
pub(crate) struct Browser {
    client: reqwest::Client,
    base: String,
}

impl Site {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A browser that has no session yet.
    pub(crate) fn browser(&self) -> Browser {
        Browser {
            client: reqwest::Client::builder()
                .cookie_store(true)
                .build()
                .expect("client"),
            base: self.base.clone(),
        }
    }

    /// A browser signed in as a new user, with a session as auth issues it
    /// (sessions are stateless: no sign-up needed).
    pub(crate) fn signed_in(&self) -> (CurrentUser, Browser) {
        let user = testing::new_user();
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            HeaderValue::from_str(&testing::session_cookie(&user)).expect("cookie"),
        );
        let client = reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .expect("client");
        (
            user,
            Browser {
                client,
                base: self.base.clone(),
            },
        )
    }

    /// The (status, provider id) of every payment the payments service
    /// recorded for `order`, oldest first.
    pub(crate) async fn payments_of(&self, order: Uuid) -> Vec<(String, Option<String>)> {
        sqlx::query_as(
            "SELECT status, stripe_id FROM payments WHERE order_id = $1 ORDER BY attempt",
        )
        .bind(order)
        .fetch_all(&self.payments_db.pool)
        .await
        .expect("read payments")
    }

    /// Waits until the payments service knows `order` at `status` (it learns
    /// of orders from order.created and order.cancelled).
    pub(crate) async fn payments_knows(&self, order: Uuid, status: &str) -> bool {
        eventually(WAIT, || async {
            let known: Option<String> =
                sqlx::query_scalar("SELECT status FROM orders WHERE id = $1")
                    .bind(order)
                    .fetch_optional(&self.payments_db.pool)
                    .await
                    .expect("read the orders replica");
            known.as_deref() == Some(status)
        })
        .await
    }
}

impl Browser {
    pub(crate) async fn get(&self, path: &str) -> Page {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("GET");
        page_of(response).await
    }

    /// Submits a form, as a browser does: urlencoded POST, then follows the
    /// redirect with a GET.
    pub(crate) async fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .form(form)
            .send()
            .await
            .expect("POST");
        page_of(response).await
    }

    /// Submits a form as a browser on `origin` does, telling the site where
    /// it comes from (`Origin` and `Sec-Fetch-Site: fetch_site`).
    pub(crate) async fn post_from(
        &self,
        origin: &str,
        fetch_site: &str,
        path: &str,
        form: &[(&str, &str)],
    ) -> Page {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .header("origin", origin)
            .header("sec-fetch-site", fetch_site)
            .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
            .form(form)
            .send()
            .await
            .expect("POST");
        page_of(response).await
    }

    /// A JSON API call with this browser's session.
    pub(crate) async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("API call");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Lists a ticket through the page and returns its id, once the orders
    /// service has heard of it (so that it can be bought at once).
    pub(crate) async fn sell(&self, title: &str, price: &str) -> Uuid {
        let page = self
            .post("/tickets/new", &[("title", title), ("price", price)])
            .await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.html);
        page.id_in_path("/tickets/")
    }

    /// Buys `ticket` through the page; the order's id.
    pub(crate) async fn purchase(&self, ticket: Uuid) -> (Uuid, Page) {
        let page = self.post(&format!("/tickets/{ticket}/purchase"), &[]).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.html);
        (page.id_in_path("/orders/"), page)
    }
}

async fn page_of(response: reqwest::Response) -> Page {
    let status = response.status();
    let url = response.url().clone();
    let path = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    let html = response.text().await.expect("body");
    Page { status, path, html }
}

/// A client that does not follow redirects, to look at them.
pub(crate) fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// Waits until the order's status (as its buyer reads it) is `status`.
pub(crate) async fn order_reaches(browser: &Browser, order: Uuid, status: &str) -> bool {
    eventually(WAIT, || async {
        let (_, body) = browser
            .api(reqwest::Method::GET, &format!("/api/orders/{order}"), None)
            .await;
        body["status"] == json!(status)
    })
    .await
}
