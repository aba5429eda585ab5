//! Sign-up and sign-in latency of the auth service, with the scrypt cost it
//! uses, next to a route that does no hashing, measured in one run.
//!
//! `cargo run --release -p buytickets-bench --bin bench-auth -- --requests 40 --concurrency 4`

use std::time::{Duration, Instant};

use buytickets_bench::{Summary, build_line};
use clap::Parser;
use common::lifecycle::Lifecycle;
use common::testing::{self, TestDatabase, TestServer};
use serde_json::json;

/// Sign-up and sign-in latency of the auth service (scrypt), next to a
/// route that does no hashing, and the timing ratio of an unknown-email
/// sign-in to a known one.
#[derive(Parser)]
#[command(name = "bench-auth")]
struct Args {
    /// Requests of each kind.
    #[arg(long, default_value_t = 40, value_parser = buytickets_bench::positive())]
    requests: usize,
    /// Concurrent sign-ups in the throughput run.
    #[arg(long, default_value_t = 4, value_parser = buytickets_bench::positive())]
    concurrency: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Args {
        requests,
        concurrency,
    } = Args::parse();
    let db = TestDatabase::create_empty().await;
    let prefix = testing::unique_prefix();
    // The run measures hashing, not the rate limits: they are out of its reach.
    let mut front_door = auth::config::FrontDoorSettings::new(testing::redis_url(), prefix.clone());
    front_door.per_ip.attempts = u32::MAX;
    front_door.per_account.attempts = u32::MAX;
    let settings = auth::config::Settings {
        common: testing::common_settings(&prefix),
        database_url: db.url.clone(),
        front_door,
        admin_emails: Vec::new(),
    };
    let lifecycle = Lifecycle::new();
    let service = auth::startup::build(&settings, &lifecycle).await?;
    let server = TestServer::start(service.into_app(), lifecycle).await;
    let client = reqwest::Client::new();
    let base = server.address.clone();

    let params = auth::password::Passwords::params();
    println!("{}", build_line());
    println!(
        "scrypt: N=2^{} r={} p={} ({} MiB per hash)",
        params.log_n(),
        params.r(),
        params.p(),
        (128 * u64::from(params.r()) * params.n()) >> 20,
    );

    let post = |path: &'static str, email: String| {
        let client = client.clone();
        let url = format!("{base}{path}");
        async move {
            let start = Instant::now();
            let response = client
                .post(url)
                .json(&json!({"email": email, "password": "benchmark-password"}))
                .send()
                .await?;
            let elapsed = start.elapsed();
            anyhow::ensure!(
                response.status().is_success() || response.status() == 400,
                "{}",
                response.status()
            );
            Ok::<_, anyhow::Error>(elapsed)
        }
    };
    let email = |i: usize| format!("bench-{i}@example.com");

    // Sequential: the latency of one request on an idle service.
    let mut signup = Vec::new();
    for i in 0..requests {
        signup.push(post("/api/users/signup", email(i)).await?);
    }
    let mut signin = Vec::new();
    for i in 0..requests {
        signin.push(post("/api/users/signin", email(i)).await?);
    }
    let mut unknown = Vec::new();
    for i in 0..requests {
        unknown.push(post("/api/users/signin", format!("nobody-{i}@example.com")).await?);
    }
    let mut current = Vec::new();
    for _ in 0..requests {
        let start = Instant::now();
        client
            .get(format!("{base}/api/users/currentuser"))
            .send()
            .await?;
        current.push(start.elapsed());
    }

    // Concurrent: hashing is bounded to one per core, so latency grows with
    // the queue while throughput stays at cores / hash time.
    let start = Instant::now();
    let mut concurrent: Vec<Duration> = Vec::new();
    for chunk in (requests..requests * 2)
        .collect::<Vec<_>>()
        .chunks(concurrency)
    {
        let batch = futures::future::try_join_all(
            chunk.iter().map(|&i| post("/api/users/signup", email(i))),
        )
        .await?;
        concurrent.extend(batch);
    }
    let wall = start.elapsed();

    println!("{}", Summary::of(&signup).line("signup (sequential)"));
    println!(
        "{}",
        Summary::of(&signin).line("signin, right password (sequential)")
    );
    println!(
        "{}",
        Summary::of(&unknown).line("signin, unknown email (sequential)")
    );
    println!("{}", Summary::of(&current).line("currentuser (no hashing)"));
    println!(
        "{}",
        Summary::of(&concurrent).line(&format!("signup ({concurrency} at a time)"))
    );
    println!(
        "signup throughput with {concurrency} concurrent clients: {:.1}/s",
        requests as f64 / wall.as_secs_f64()
    );
    let ratio = Summary::of(&unknown).p50.as_secs_f64() / Summary::of(&signin).p50.as_secs_f64();
    println!("unknown-email / known-email signin p50 ratio: {ratio:.2}");
    Ok(())
}
