//! A real SMTP server inside the test: the `mailin` protocol state machine
//! on a tokio listener, keeping every message it accepted. It can be stopped
//! (the port refuses connections) and started again on the same port, and
//! it answers `550` to recipients whose address starts with `reject`.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use mailin::{Action, Handler, Response, SessionBuilder};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// A message the server accepted.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    /// The envelope's recipients.
    pub(crate) to: Vec<String>,
    pub(crate) subject: String,
    pub(crate) message_id: String,
    pub(crate) text: String,
    pub(crate) html: String,
}

#[derive(Default)]
struct Shared {
    received: Vec<Received>,
    /// Every RCPT TO the server was sent, accepted or not.
    rcpt_attempts: Vec<String>,
}

/// The server; dropping it stops it.
pub(crate) struct SmtpServer {
    addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    tasks: Option<JoinSet<()>>,
}

impl SmtpServer {
    /// Starts a server on a free local port.
    pub(crate) async fn start() -> SmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind SMTP");
        let addr = listener.local_addr().expect("SMTP address");
        let mut server = SmtpServer {
            addr,
            shared: Arc::default(),
            tasks: None,
        };
        server.serve(listener);
        server
    }

    /// The port it listens on.
    pub(crate) fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Closes the port and every open connection.
    pub(crate) async fn stop(&mut self) {
        if let Some(mut tasks) = self.tasks.take() {
            tasks.shutdown().await;
        }
    }

    /// Listens again, on the same port.
    pub(crate) async fn resume(&mut self) {
        let listener = TcpListener::bind(self.addr).await.expect("rebind SMTP");
        self.serve(listener);
    }

    /// The messages accepted so far.
    pub(crate) fn received(&self) -> Vec<Received> {
        self.shared.lock().expect("lock").received.clone()
    }

    /// How many times `address` was offered as a recipient.
    pub(crate) fn rcpt_attempts(&self, address: &str) -> usize {
        let shared = self.shared.lock().expect("lock");
        shared
            .rcpt_attempts
            .iter()
            .filter(|a| a.as_str() == address)
            .count()
    }

    fn serve(&mut self, listener: TcpListener) {
        let mut tasks = JoinSet::new();
        let shared = self.shared.clone();
        tasks.spawn(async move {
            // Connections live in this task's set, so stopping the server
            // closes them too.
            let mut conns = JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                conns.spawn(session(stream, shared.clone()));
            }
        });
        self.tasks = Some(tasks);
    }
}

struct Collector {
    shared: Arc<Mutex<Shared>>,
    to: Vec<String>,
    data: Vec<u8>,
}

impl Handler for Collector {
    fn rcpt(&mut self, to: &str) -> Response {
        self.shared
            .lock()
            .expect("lock")
            .rcpt_attempts
            .push(to.to_string());
        if to.starts_with("reject") {
            mailin::response::NO_MAILBOX
        } else {
            mailin::response::OK
        }
    }

    fn data_start(&mut self, _domain: &str, _from: &str, _8bit: bool, to: &[String]) -> Response {
        self.to = to.to_vec();
        self.data.clear();
        mailin::response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let parsed = mail_parser::MessageParser::default()
            .parse(&self.data)
            .expect("a parsable message");
        let received = Received {
            to: self.to.clone(),
            subject: parsed.subject().unwrap_or_default().to_string(),
            message_id: parsed.message_id().unwrap_or_default().to_string(),
            text: parsed.body_text(0).unwrap_or_default().to_string(),
            html: parsed.body_html(0).unwrap_or_default().to_string(),
        };
        self.shared.lock().expect("lock").received.push(received);
        mailin::response::OK
    }
}

async fn session(stream: TcpStream, shared: Arc<Mutex<Shared>>) {
    let ip = stream
        .peer_addr()
        .map(|a| a.ip())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]));
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let handler = Collector {
        shared,
        to: Vec::new(),
        data: Vec::new(),
    };
    let mut session = SessionBuilder::new("test-smtp").build(ip, handler);
    let greeting = session.greeting().buffer().expect("greeting");
    if write.write_all(&greeting).await.is_err() {
        return;
    }
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let response = session.process(&line);
        match response.action {
            Action::NoReply => {}
            Action::Reply | Action::UpgradeTls => {
                let bytes = response.buffer().expect("response");
                if write.write_all(&bytes).await.is_err() {
                    return;
                }
            }
            Action::Close => {
                let bytes = response.buffer().expect("response");
                let _ = write.write_all(&bytes).await;
                return;
            }
        }
    }
}
