//! Starts the `buytickets-suite` binary as a child process and talks to it.

use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::testing::{self, TestDatabase};

/// The services that own a database, as `scripts/dev` lists them.
const DATABASES: [&str; 3] = ["AUTH", "TICKETS", "ORDERS"];

pub(crate) struct Suite {
    pub(crate) base: String,
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
        let mut command = Command::new(env!("CARGO_BIN_EXE_buytickets-suite"));
        command
            .env("PORT", port.to_string())
            .env("NATS_URL", testing::nats_url())
            .env("NATS_PREFIX", testing::unique_prefix())
            .env("JWT_KEY", testing::session_settings().key)
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "warn")
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
    }
}

/// A client that keeps cookies, like a browser.
pub(crate) fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("client")
}
