//! A TCP proxy that injects faults between a service under test and a real
//! server (PostgreSQL, Redis, NATS): latency, a hang, resets and cut
//! connections, switched while the test runs. It stands in for toxiproxy,
//! which the build machines cannot install.
//!
//! ```ignore
//! let proxy = FaultProxy::start("127.0.0.1:5432").await;
//! let url = proxy.route(&database_url); // the same URL, through the proxy
//! proxy.set(Fault::Down);               // every connection reset, new ones refused
//! proxy.set(Fault::Pass);               // the database is back
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// What the proxy does to the traffic it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forwards everything as it comes.
    Pass,
    /// Delays every chunk of data, both ways, by this much.
    Latency(Duration),
    /// Accepts connections but forwards nothing, in either direction, until
    /// the fault changes: a peer that stopped answering without closing.
    Hang,
    /// Resets every open connection and every new one at once: a server
    /// that went away (as a crashed host or a dropped route looks).
    Down,
}

/// A proxy on a free local port in front of one upstream address; stops
/// (and closes its connections) on drop.
pub struct FaultProxy {
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    upstream: String,
    fault: watch::Sender<Fault>,
    /// Cancelled to cut every open connection; replaced afterwards.
    cut: watch::Sender<CancellationToken>,
    open: Arc<AtomicUsize>,
    stop: CancellationToken,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (`host:port`), passing traffic.
    pub async fn start(upstream: &str) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let (fault, _) = watch::channel(Fault::Pass);
        let (cut, _) = watch::channel(CancellationToken::new());
        let proxy = FaultProxy {
            port,
            upstream: upstream.to_string(),
            fault,
            cut,
            open: Arc::new(AtomicUsize::new(0)),
            stop: CancellationToken::new(),
        };
        let (faults, cuts, open, stop) = (
            proxy.fault.subscribe(),
            proxy.cut.subscribe(),
            proxy.open.clone(),
            proxy.stop.clone(),
        );
        let upstream = proxy.upstream.clone();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    () = stop.cancelled() => return,
                    accepted = listener.accept() => accepted,
                };
                let Ok((client, _)) = accepted else { continue };
                let connection = Connection {
                    upstream: upstream.clone(),
                    fault: faults.clone(),
                    cut: cuts.borrow().clone(),
                    stop: stop.clone(),
                    open: open.clone(),
                };
                tokio::spawn(connection.run(client));
            }
        });
        proxy
    }

    /// A proxy to the host and port of `url` (e.g. a `postgres://` or
    /// `redis://` URL).
    pub async fn in_front_of(url: &str) -> FaultProxy {
        let parsed = reqwest::Url::parse(url).expect("a URL");
        let host = parsed.host_str().expect("a host");
        let port = parsed.port().expect("a port");
        FaultProxy::start(&format!("{host}:{port}")).await
    }

    /// `url` with its host and port replaced by the proxy's: the same
    /// server, reached through the proxy.
    pub fn route(&self, url: &str) -> String {
        let mut parsed = reqwest::Url::parse(url).expect("a URL");
        parsed.set_host(Some("127.0.0.1")).expect("a host");
        parsed.set_port(Some(self.port)).expect("a port");
        parsed.to_string()
    }

    /// Switches the fault; [`Fault::Down`] also resets every open connection.
    pub fn set(&self, fault: Fault) {
        if fault == Fault::Down {
            self.cut();
        }
        self.fault.send_replace(fault);
    }

    /// Resets every open connection, leaving the fault as it is: new
    /// connections get through (unless the fault is [`Fault::Down`]).
    pub fn cut(&self) {
        self.cut.send_replace(CancellationToken::new()).cancel();
    }

    /// How many client connections are open through the proxy.
    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

struct Connection {
    upstream: String,
    fault: watch::Receiver<Fault>,
    cut: CancellationToken,
    stop: CancellationToken,
    open: Arc<AtomicUsize>,
}

impl Connection {
    async fn run(self, mut client: TcpStream) {
        if *self.fault.borrow() == Fault::Down {
            return reset(client);
        }
        let Ok(mut upstream) = TcpStream::connect(&self.upstream).await else {
            return reset(client);
        };
        self.open.fetch_add(1, Ordering::SeqCst);
        let faulted = {
            let (client_in, client_out) = client.split();
            let (upstream_in, upstream_out) = upstream.split();
            let mut went_down = self.fault.clone();
            tokio::select! {
                () = pipe(client_in, upstream_out, self.fault.clone()) => false,
                () = pipe(upstream_in, client_out, self.fault.clone()) => false,
                () = self.cut.cancelled() => true,
                () = self.stop.cancelled() => true,
                _ = went_down.wait_for(|f| *f == Fault::Down) => true,
            }
        };
        self.open.fetch_sub(1, Ordering::SeqCst);
        if faulted {
            reset(client);
            reset(upstream);
        }
    }
}

/// Closes with a TCP reset rather than an orderly close, as a crashed peer
/// or a dropped route would look to the client.
fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

/// Copies `from` to `to` chunk by chunk, applying the current fault to each.
/// Returns when either side closes or fails.
async fn pipe(
    mut from: tokio::net::tcp::ReadHalf<'_>,
    mut to: tokio::net::tcp::WriteHalf<'_>,
    mut fault: watch::Receiver<Fault>,
) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        // A hang holds the bytes back as well as what comes after them.
        if fault.wait_for(|f| *f != Fault::Hang).await.is_err() {
            return;
        }
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => {
                let _ = to.shutdown().await;
                return;
            }
            Ok(n) => n,
        };
        let current = *fault.borrow();
        match current {
            Fault::Pass => {}
            Fault::Latency(delay) => tokio::time::sleep(delay).await,
            Fault::Hang => {
                if fault.wait_for(|f| *f != Fault::Hang).await.is_err() {
                    return;
                }
            }
            Fault::Down => return,
        }
        if to.write_all(&buffer[..read]).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server on a free port.
    async fn echo() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("addr").to_string();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        address
    }

    async fn round_trip(port: u16, within: Duration) -> std::io::Result<Vec<u8>> {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await?;
        s.write_all(b"ping").await?;
        let mut reply = [0u8; 4];
        match tokio::time::timeout(within, s.read_exact(&mut reply)).await {
            Ok(read) => read.map(|_| reply.to_vec()),
            Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
        }
    }

    #[tokio::test]
    async fn it_passes_delays_hangs_and_resets_traffic_on_demand() {
        let proxy = FaultProxy::start(&echo().await).await;
        let quick = Duration::from_millis(500);
        assert_eq!(
            round_trip(proxy.port, quick).await.expect("passes"),
            b"ping"
        );

        proxy.set(Fault::Latency(Duration::from_millis(150)));
        let started = std::time::Instant::now();
        round_trip(proxy.port, quick).await.expect("delayed");
        assert!(started.elapsed() >= Duration::from_millis(300), "both ways");

        proxy.set(Fault::Hang);
        let hung = round_trip(proxy.port, quick).await.expect_err("hangs");
        assert_eq!(hung.kind(), std::io::ErrorKind::TimedOut);

        proxy.set(Fault::Down);
        let down = round_trip(proxy.port, quick).await.expect_err("reset");
        assert_ne!(down.kind(), std::io::ErrorKind::TimedOut, "{down}");

        proxy.set(Fault::Pass);
        assert_eq!(round_trip(proxy.port, quick).await.expect("back"), b"ping");
    }

    #[tokio::test]
    async fn cutting_resets_open_connections_and_lets_new_ones_through() {
        let proxy = FaultProxy::start(&echo().await).await;
        let mut open = TcpStream::connect(("127.0.0.1", proxy.port))
            .await
            .expect("connect");
        open.write_all(b"ping").await.expect("write");
        let mut reply = [0u8; 4];
        open.read_exact(&mut reply).await.expect("echo");
        assert_eq!(proxy.open_connections(), 1);

        proxy.cut();
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(2), open.read_to_end(&mut rest))
            .await
            .expect("closed promptly");
        assert!(closed.is_err(), "a reset, not an orderly close: {closed:?}");
        assert_eq!(
            round_trip(proxy.port, Duration::from_millis(500))
                .await
                .expect("new connections pass"),
            b"ping"
        );
    }
}
