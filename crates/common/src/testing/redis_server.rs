//! A private `redis-server` with an append-only file, for tests that kill
//! and restart Redis: never the machine's own server.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use uuid::Uuid;

/// A private `redis-server` on a free port with its own data directory and
/// the production durability settings (AOF, `appendfsync everysec`, no
/// eviction). Killed on drop.
pub struct RedisServer {
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server on a free port with an empty data directory.
    pub fn start() -> RedisServer {
        let port = super::free_port();
        let dir = std::env::temp_dir().join(format!("bt-redis-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("a data directory");
        let mut server = RedisServer {
            port,
            dir,
            child: None,
        };
        server.resume();
        server
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server with SIGKILL, as a crash would: what reached the
    /// append-only file survives, nothing is saved on the way out.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and data directory; it
    /// replays its append-only file before it accepts connections.
    pub fn resume(&mut self) {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--appendonly", "yes", "--appendfsync", "everysec"])
            .args(["--save", "", "--maxmemory-policy", "noeviction"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (scripts/dev installs it)");
        self.child = Some(child);
        super::wait_until_listening(self.port, "redis-server");
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
