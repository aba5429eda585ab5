//! A private JetStream-enabled `nats-server` for tests that stop, kill and
//! restart the broker: never the machine's own server.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use uuid::Uuid;

/// A private JetStream-enabled `nats-server` on a free port with its own
/// store directory, for tests that stop and restart the broker. Killed on drop.
pub struct NatsServer {
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    store: PathBuf,
    child: Option<Child>,
}

impl NatsServer {
    /// Starts a server on a free port with an empty store of its own.
    pub fn start() -> NatsServer {
        let port = super::free_port();
        let store = std::env::temp_dir().join(format!("bt-nats-{}", Uuid::new_v4().simple()));
        let mut server = NatsServer {
            port,
            store,
            child: None,
        };
        server.resume();
        server
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Stops the server (its stored streams stay on disk).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and store.
    pub fn resume(&mut self) {
        let binary = [
            "/usr/sbin/nats-server",
            "/usr/bin/nats-server",
            "nats-server",
        ]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or("nats-server");
        let child = Command::new(binary)
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(&self.store)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server is installed (scripts/dev installs it)");
        self.child = Some(child);
        super::wait_until_listening(self.port, "nats-server");
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.store);
    }
}
