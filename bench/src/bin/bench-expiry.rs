//! How late does a reservation end? Starts orders and expiration against the
//! local PostgreSQL, Redis and NATS, makes `--orders` reservations with a
//! `--window`-second hold, and for each one measures the moment its
//! `order.cancelled` reaches a subscriber minus its `expiresAt`: the
//! expiration job's timer, `expiration.complete`, the orders listener, the
//! outbox relay and JetStream, end to end. Nothing reads the orders
//! meanwhile, so the sweep and cancel-on-read do not take part (the sweep's
//! grace period is far longer than the measurement).
//!
//! `cargo run --release -p buytickets-bench --bin bench-expiry -- --orders 200 --window 5`

use std::collections::HashMap;
use std::time::Duration;

use buytickets_bench::{Summary, build_line, positive};
use chrono::{DateTime, Utc};
use clap::Parser;
use common::bus::Bus;
use common::events::{Event as _, OrderCancelled};
use common::lifecycle::Lifecycle;
use common::testing::{self, TestDatabase, TestServer};
use futures::StreamExt as _;
use serde_json::{Value, json};
use uuid::Uuid;

/// How late reservations end: the moment each `order.cancelled` reaches a
/// subscriber minus the order's `expiresAt`.
#[derive(Parser)]
#[command(name = "bench-expiry")]
struct Args {
    /// Reservations to make.
    #[arg(long, default_value_t = 200, value_parser = positive())]
    orders: usize,
    /// How long each reservation holds its ticket, in seconds.
    #[arg(long, default_value_t = 5)]
    window: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let n = args.orders;
    let window = Duration::from_secs(args.window);
    let prefix = testing::unique_prefix();
    let common = testing::common_settings(&prefix);
    let orders_db = TestDatabase::create_empty().await;

    let bus = Bus::connect(&common.nats, "expiry-bench").await?;
    bus.ensure_streams().await?;
    let mut cancellations = bus
        .client()
        .subscribe(bus.subject(OrderCancelled::SUBJECT))
        .await?;

    let lifecycle = Lifecycle::new();
    let service = expiration::startup::build(
        &expiration::config::Settings {
            common: common.clone(),
            redis_url: testing::redis_url(),
            queue: format!("bench:{prefix}"),
        },
        &lifecycle,
    )
    .await?;
    let _expiration = TestServer::start(service.into_app(), lifecycle).await;
    let lifecycle = Lifecycle::new();
    let service = orders::startup::build(
        &orders::config::Settings {
            common,
            database_url: orders_db.url.clone(),
            order_expiration: window,
            sweep: orders::config::SweepSettings::default(),
        },
        &lifecycle,
    )
    .await?;
    let orders = TestServer::start(service.into_app(), lifecycle).await;

    // Tickets straight into the orders service's replica: this measures
    // expiry, not listing.
    let mut tickets = Vec::with_capacity(n);
    for i in 0..n {
        let id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO tickets (id, title, price, user_id, version) VALUES ($1, $2, 1250, $3, 0)",
        )
        .bind(id)
        .bind(format!("Bench {i}"))
        .bind(Uuid::now_v7())
        .execute(&orders_db.pool)
        .await?;
        tickets.push(id);
    }

    let client = reqwest::Client::new();
    let mut expires_at: HashMap<Uuid, DateTime<Utc>> = HashMap::with_capacity(n);
    for ticket in &tickets {
        let buyer = testing::session_cookie(&testing::new_user());
        let response = client
            .post(format!("{}/api/orders", orders.address))
            .header("Cookie", buyer)
            .json(&json!({"ticketId": ticket}))
            .send()
            .await?;
        anyhow::ensure!(
            response.status() == 201,
            "reservation failed: {}",
            response.status()
        );
        let order: Value = response.json().await?;
        let id: Uuid = serde_json::from_value(order["id"].clone())?;
        let at: DateTime<Utc> = serde_json::from_value(order["expiresAt"].clone())?;
        expires_at.insert(id, at);
    }

    let mut lateness = Vec::with_capacity(n);
    let mut early = 0usize;
    let deadline = tokio::time::Instant::now() + window + Duration::from_secs(60);
    while lateness.len() + early < n {
        let message = tokio::time::timeout_at(deadline, cancellations.next())
            .await
            .map_err(|_| anyhow::anyhow!("only {} of {n} orders were cancelled", lateness.len()))?
            .ok_or_else(|| anyhow::anyhow!("the subscription ended"))?;
        let received = Utc::now();
        let event: OrderCancelled = serde_json::from_slice(&message.payload)?;
        let Some(at) = expires_at.remove(&event.id) else {
            continue;
        };
        match (received - at).to_std() {
            Ok(late) => lateness.push(late),
            Err(_) => early += 1,
        }
    }

    println!("{}", build_line());
    println!("{n} reservations of {window:?}; cancelled before expiresAt: {early}");
    println!(
        "{}",
        Summary::of(&lateness).line("order.cancelled − expiresAt")
    );
    Ok(())
}
