//! Starts the `buytickets-suite` binary as a child process and talks to it.

use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::testing::{self, TestDatabase};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The services that own a database, as `scripts/dev` lists them.
const DATABASES: [&str; 5] = ["AUTH", "TICKETS", "ORDERS", "PAYMENTS", "NOTIFICATIONS"];

pub(crate) struct Suite {
    pub(crate) base: String,
    /// Where the suite writes its mails (the file transport), one per suite.
    pub(crate) mail_dir: std::path::PathBuf,
    child: Child,
    _databases: Vec<TestDatabase>,
}

impl Suite {
    /// Starts the suite with `extra` environment variables and waits until
    /// `/readyz` says ready.
    pub(crate) async fn start(extra: &[(&str, &str)]) -> Suite {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let prefix = testing::unique_prefix();
        let mail_dir = std::env::temp_dir().join(format!("buytickets-mail-{prefix}"));
        let mut command = Command::new(env!("CARGO_BIN_EXE_buytickets-suite"));
        command
            .env("PORT", port.to_string())
            .env("NATS_URL", testing::nats_url())
            .env("NATS_PREFIX", &prefix)
            // JetStream reserves each stream's byte limit up front; the shared
            // server holds the streams of hundreds of test namespaces.
            .env("NATS_STREAM_MAX_BYTES", "-1")
            .env("REDIS_URL", testing::redis_url())
            .env("EXPIRATION_QUEUE", format!("{prefix}:expiration"))
            .env("SESSION_CACHE_PREFIX", format!("{prefix}:session:"))
            .env("JWT_KEY", testing::TEST_SESSION_KEY)
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "warn")
            .env("MAIL_DIR", &mail_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let mut databases = Vec::new();
        for service in DATABASES {
            let db = TestDatabase::create_empty().await;
            command.env(format!("{service}_DATABASE_URL"), &db.url);
            databases.push(db);
        }
        for (name, value) in extra {
            command.env(name, value);
        }
        let child = command.spawn().expect("the suite binary starts");
        let suite = Suite {
            base: format!("http://127.0.0.1:{port}"),
            mail_dir,
            child,
            _databases: databases,
        };
        let ready = testing::eventually(Duration::from_secs(30), || async {
            reqwest::get(suite.url("/readyz"))
                .await
                .is_ok_and(|r| r.status().is_success())
        })
        .await;
        assert!(ready, "the suite became ready");
        suite
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The `.eml` files written so far to `to` whose subject starts with
    /// `subject`, as text.
    pub(crate) fn mails(&self, to: &str, subject: &str) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.mail_dir) else {
            return Vec::new();
        };
        entries
            .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
            .filter(|mail| {
                mail.lines().any(|l| l.trim_end() == format!("To: {to}"))
                    && mail
                        .lines()
                        .any(|l| l.starts_with(&format!("Subject: {subject}")))
            })
            .collect()
    }

    /// Waits (10 s at most) until a mail to `to` starting with `subject`
    /// was written, and returns it.
    pub(crate) async fn wait_for_mail(&self, to: &str, subject: &str) -> String {
        let found = testing::eventually(Duration::from_secs(10), || async {
            !self.mails(to, subject).is_empty()
        })
        .await;
        assert!(
            found,
            "a {subject:?} mail to {to} in {}",
            self.mail_dir.display()
        );
        self.mails(to, subject).remove(0)
    }

    /// Sends SIGTERM and waits for the process to exit, at most `within`.
    pub(crate) fn terminate(&mut self, within: Duration) -> Option<ExitStatus> {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Suite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.mail_dir);
    }
}

/// A client that keeps cookies, like a browser.
pub(crate) fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("client")
}

/// A new user, signed up, with the session in its cookie store.
pub(crate) async fn signed_up(suite: &Suite, email: &str) -> reqwest::Client {
    let client = browser();
    let response = client
        .post(suite.url("/api/users/signup"))
        .json(&json!({"email": email, "password": "password1"}))
        .send()
        .await
        .expect("signup");
    assert_eq!(response.status(), StatusCode::CREATED);
    client
}

pub(crate) async fn json_of(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Polls `GET url` until `check` holds for its body (10 s at most).
pub(crate) async fn wait_for(
    client: &reqwest::Client,
    url: String,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let mut last = Value::Null;
    for _ in 0..500 {
        last = client
            .get(&url)
            .send()
            .await
            .expect("get")
            .json()
            .await
            .unwrap_or(Value::Null);
        if check(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{url} never satisfied the check; last body {last}");
}

/// Lists a ticket as `seller`; its id.
pub(crate) async fn list_ticket(suite: &Suite, seller: &reqwest::Client, price: f64) -> String {
    let (status, ticket) = json_of(
        seller
            .post(suite.url("/api/tickets"))
            .json(&json!({"title": "Concert", "price": price}))
            .send()
            .await
            .expect("create"),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{ticket}");
    ticket["id"].as_str().expect("id").to_string()
}

/// Reserves `ticket_id` as `buyer`, retrying while the orders service has
/// not heard of the ticket yet; the order.
pub(crate) async fn reserve(suite: &Suite, buyer: &reqwest::Client, ticket_id: &str) -> Value {
    for _ in 0..250 {
        let (status, body) = json_of(
            buyer
                .post(suite.url("/api/orders"))
                .json(&json!({"ticketId": ticket_id}))
                .send()
                .await
                .expect("reserve"),
        )
        .await;
        if status == StatusCode::CREATED {
            return body;
        }
        assert_eq!(
            status,
            StatusCode::NOT_FOUND,
            "only 'not heard of yet' is retried: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the orders service never heard of ticket {ticket_id}");
}
