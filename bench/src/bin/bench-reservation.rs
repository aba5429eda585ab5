//! How long after `POST /api/orders` returns does `GET /api/tickets/:id` show
//! the order? That is the outbox relay, JetStream, and the tickets service's
//! order.created listener end to end. Also times the reservation request
//! itself and a hot ticket (many buyers at once, one winner).
//!
//! `cargo run --release -p buytickets-bench --bin bench-reservation -- --orders 200 --buyers 100`

use std::time::{Duration, Instant};

use buytickets_bench::marketplace::Marketplace;
use buytickets_bench::{Summary, build_line, positive};
use clap::Parser;
use common::testing;
use serde_json::{Value, json};

/// Lists `n` tickets as one seller and waits until the orders replica has them all.
async fn list_tickets(
    suite: &Marketplace,
    client: &reqwest::Client,
    seller: &str,
    n: usize,
) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let ticket: Value = client
            .post(format!("{}/api/tickets", suite.tickets.address))
            .header("Cookie", seller)
            .json(&json!({"title": format!("Bench {i}"), "price": 12.5}))
            .send()
            .await?
            .json()
            .await?;
        ids.push(ticket["id"].as_str().unwrap_or_default().to_string());
    }
    let replicated = testing::eventually(Duration::from_secs(60), || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM tickets")
            .fetch_one(&suite.orders_db.pool)
            .await
            .is_ok_and(|c| c as usize >= n)
    })
    .await;
    anyhow::ensure!(replicated, "the orders replica did not catch up");
    Ok(ids)
}

/// The latency of `POST /api/orders`, the time from its answer until
/// `GET /api/tickets/:id` shows the order, and a hot ticket that many buyers
/// reserve at once.
#[derive(Parser)]
#[command(name = "bench-reservation")]
struct Args {
    /// Reservations to time, one after the other.
    #[arg(long, default_value_t = 200, value_parser = positive())]
    orders: usize,
    /// Buyers reserving the hot ticket at once.
    #[arg(long, default_value_t = 100, value_parser = positive())]
    buyers: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Args { orders: n, buyers } = Args::parse();
    let suite = Marketplace::start().await?;
    let client = reqwest::Client::new();
    let seller = testing::session_cookie(&testing::new_user());
    let ids = list_tickets(&suite, &client, &seller, n + 1).await?;

    let mut request = Vec::with_capacity(n);
    let mut visible = Vec::with_capacity(n);
    for id in &ids[..n] {
        let buyer = testing::session_cookie(&testing::new_user());
        let start = Instant::now();
        let response = client
            .post(format!("{}/api/orders", suite.orders.address))
            .header("Cookie", &buyer)
            .json(&json!({"ticketId": id}))
            .send()
            .await?;
        let returned = Instant::now();
        anyhow::ensure!(
            response.status() == 201,
            "reservation failed: {}",
            response.status()
        );
        let order: Value = response.json().await?;
        request.push(returned - start);
        // Poll the ticket until the tickets service shows the order.
        loop {
            let ticket: Value = client
                .get(format!("{}/api/tickets/{id}", suite.tickets.address))
                .send()
                .await?
                .json()
                .await?;
            if ticket["orderId"] == order["id"] {
                visible.push(returned.elapsed());
                break;
            }
            anyhow::ensure!(
                returned.elapsed() < Duration::from_secs(30),
                "the ticket never showed the order"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    // The hot ticket: every buyer at once.
    let hot = &ids[n];
    let start = Instant::now();
    let statuses = futures::future::join_all((0..buyers).map(|_| {
        let client = client.clone();
        let url = format!("{}/api/orders", suite.orders.address);
        let cookie = testing::session_cookie(&testing::new_user());
        let hot = hot.clone();
        async move {
            client
                .post(url)
                .header("Cookie", cookie)
                .json(&json!({"ticketId": hot}))
                .send()
                .await
                .map(|r| r.status().as_u16())
        }
    }))
    .await;
    let hot_wall = start.elapsed();
    let won = statuses.iter().filter(|s| matches!(s, Ok(201))).count();
    let refused = statuses.iter().filter(|s| matches!(s, Ok(400))).count();

    println!("{}", build_line());
    println!(
        "{}",
        Summary::of(&request).line("POST /api/orders (request)")
    );
    println!(
        "{}",
        Summary::of(&visible).line("POST returned → ticket shows orderId")
    );
    println!(
        "hot ticket: {buyers} concurrent buyers → {won} × 201, {refused} × 400, in {hot_wall:?}"
    );
    suite.stop().await
}
