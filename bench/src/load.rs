//! Load on `POST /api/tickets`, two ways. The open model sends requests on a
//! fixed schedule whatever the answers do (each request its own task), so a
//! slow service meets the same arrival rate a real flash sale would bring and
//! its latency is measured from the moment a request was due, free of
//! coordinated omission. The closed model keeps N clients busy, each sending
//! its next request when the previous one is answered: the highest rate the
//! API itself sustains.

use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio::task::JoinSet;
use tokio::time::Instant;
use uuid::Uuid;

/// A send is late when it leaves more than this after its scheduled time.
pub const LATE: Duration = Duration::from_millis(5);

/// Creates tickets through the API as one signed-in seller. Cheap to clone.
#[derive(Clone)]
pub struct TicketClient {
    http: reqwest::Client,
    url: String,
    cookie: String,
}

impl TicketClient {
    /// A client of the tickets service at `base` (e.g. `http://127.0.0.1:1234`).
    pub fn new(base: &str) -> anyhow::Result<TicketClient> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .context("building the HTTP client")?;
        Ok(TicketClient {
            http,
            url: format!("{base}/api/tickets"),
            cookie: common::testing::TestUser::new().cookie,
        })
    }

    /// Lists ticket number `n`; returns its id and the moment the API
    /// answered 201. Any other answer is an error.
    pub async fn create(&self, n: usize) -> anyhow::Result<(Uuid, DateTime<Utc>)> {
        let response = self
            .http
            .post(&self.url)
            .header("Cookie", &self.cookie)
            .json(&json!({"title": format!("Flash sale {n}"), "price": 42.5}))
            .send()
            .await
            .context("sending POST /api/tickets")?;
        let answered = Utc::now();
        anyhow::ensure!(
            response.status() == reqwest::StatusCode::CREATED,
            "POST /api/tickets answered {}",
            response.status()
        );
        let body: Value = response.json().await.context("reading the new ticket")?;
        let id = body["id"]
            .as_str()
            .and_then(|id| id.parse().ok())
            .context("the new ticket has no id")?;
        Ok((id, answered))
    }
}

/// One request of an open-model run.
pub struct Creation {
    /// Position in the schedule (0 first).
    pub index: usize,
    /// How long after its scheduled time the request was sent.
    pub behind: Duration,
    /// From the scheduled time to the answer.
    pub latency: Duration,
    /// The new ticket and when the API answered, or why it failed.
    pub result: Result<(Uuid, DateTime<Utc>), String>,
}

/// What an open-model run did.
pub struct OpenRun {
    /// Every request, in schedule order.
    pub creations: Vec<Creation>,
    /// From the first scheduled send to the last answer.
    pub elapsed: Duration,
}

impl OpenRun {
    /// Requests answered 201 per second of the run.
    pub fn achieved_rate(&self) -> f64 {
        let ok = self.creations.iter().filter(|c| c.result.is_ok()).count();
        ok as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }

    /// Requests sent more than [`LATE`] after their time.
    pub fn late(&self) -> usize {
        self.creations.iter().filter(|c| c.behind > LATE).count()
    }

    /// The largest delay of a send behind its time.
    pub fn most_behind(&self) -> Duration {
        self.creations
            .iter()
            .map(|c| c.behind)
            .max()
            .unwrap_or_default()
    }

    /// The failed requests.
    pub fn failures(&self) -> impl Iterator<Item = &String> {
        self.creations
            .iter()
            .filter_map(|c| c.result.as_ref().err())
    }
}

/// Sends `rate` ticket creations per second for `duration` on a fixed
/// schedule, each in a task of its own, and waits for every answer.
pub async fn open(client: TicketClient, rate: f64, duration: Duration) -> OpenRun {
    let total = (rate * duration.as_secs_f64()).round() as usize;
    let period = Duration::from_secs_f64(1.0 / rate);
    let start = Instant::now();
    let mut requests = JoinSet::new();
    for index in 0..total {
        let due = start + period.mul_f64(index as f64);
        tokio::time::sleep_until(due).await;
        let behind = due.elapsed();
        let client = client.clone();
        requests.spawn(async move {
            let result = client.create(index).await.map_err(|e| format!("{e:#}"));
            Creation {
                index,
                behind,
                latency: due.elapsed(),
                result,
            }
        });
    }
    let mut creations = Vec::with_capacity(total);
    while let Some(joined) = requests.join_next().await {
        match joined {
            Ok(creation) => creations.push(creation),
            Err(e) => eprintln!("a request task failed: {e}"),
        }
    }
    let elapsed = start.elapsed();
    creations.sort_by_key(|c| c.index);
    OpenRun { creations, elapsed }
}

/// What a closed-model run did.
pub struct ClosedRun {
    /// Tickets created.
    pub created: usize,
    /// Requests that failed.
    pub failed: usize,
    /// Latency of each created ticket's request.
    pub latencies: Vec<Duration>,
    pub elapsed: Duration,
}

impl ClosedRun {
    /// Tickets created per second.
    pub fn rate(&self) -> f64 {
        self.created as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }
}

/// Keeps `clients` requests in flight for `duration`, each client sending
/// its next ticket creation as soon as the previous one is answered.
pub async fn closed(client: TicketClient, clients: usize, duration: Duration) -> ClosedRun {
    let start = Instant::now();
    let deadline = start + duration;
    let mut workers = JoinSet::new();
    for worker in 0..clients {
        let client = client.clone();
        workers.spawn(async move {
            let (mut created, mut failed, mut latencies) = (0, 0, Vec::new());
            let mut n = worker;
            while Instant::now() < deadline {
                let sent = Instant::now();
                match client.create(n).await {
                    Ok(_) => {
                        created += 1;
                        latencies.push(sent.elapsed());
                    }
                    Err(_) => failed += 1,
                }
                n += clients;
            }
            (created, failed, latencies)
        });
    }
    let mut run = ClosedRun {
        created: 0,
        failed: 0,
        latencies: Vec::new(),
        elapsed: Duration::ZERO,
    };
    while let Some(joined) = workers.join_next().await {
        match joined {
            Ok((created, failed, latencies)) => {
                run.created += created;
                run.failed += failed;
                run.latencies.extend(latencies);
            }
            Err(e) => eprintln!("a client task failed: {e}"),
        }
    }
    run.elapsed = start.elapsed();
    run
}
