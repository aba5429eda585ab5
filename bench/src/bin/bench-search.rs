//! Search latency of the tickets API over 100,000 tickets: p50/p99 of the
//! typical queries a buyer makes (text, dates, prices, each sort, a second
//! page), each beside the execution time PostgreSQL reports for the same
//! statement with `EXPLAIN ANALYZE` through `psql`, so that the cost of the
//! HTTP layer and of the query can be told apart.
//!
//! `cargo run --release -p buytickets-bench --bin bench-search -- --tickets 100000 --requests 200`

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use buytickets_bench::{Summary, positive};
use clap::Parser;
use common::lifecycle::Lifecycle;
use common::testing::{self, TestDatabase, TestServer};

/// One typical search: the API's query string and the statement the
/// tickets service runs for it (its store's SQL, with the values inlined).
struct Case {
    label: &'static str,
    query: &'static str,
    sql: &'static str,
}

const COLUMNS: &str = "id, title, price, user_id, order_id, version, reserved_until, sold_at, \
     event_name, venue, city, event_date, section, seat_row, seat";

const LISTED: &str = "order_id IS NULL AND (event_date IS NULL OR event_date > now())";

fn cases() -> Vec<Case> {
    vec![
        Case {
            label: "newest (home page)",
            query: "limit=20",
            sql: "ORDER BY id DESC LIMIT 21",
        },
        Case {
            label: "q=radiohead, newest",
            query: "limit=20&q=radiohead",
            sql: "AND search @@ websearch_to_tsquery('simple', 'radiohead') ORDER BY id DESC LIMIT 21",
        },
        Case {
            label: "q=london, sort=price",
            query: "limit=20&q=london&sort=price",
            sql: "AND search @@ websearch_to_tsquery('simple', 'london') ORDER BY price, id LIMIT 21",
        },
        Case {
            label: "q=nosuchword (no match)",
            query: "limit=20&q=nosuchword",
            sql: "AND search @@ websearch_to_tsquery('simple', 'nosuchword') ORDER BY id DESC LIMIT 21",
        },
        Case {
            label: "sort=date",
            query: "limit=20&sort=date",
            sql: "ORDER BY coalesce(event_date, 'infinity'::timestamptz), id LIMIT 21",
        },
        Case {
            label: "next 30 days, sort=date",
            query: "limit=20&sort=date&from=NOW&to=IN30",
            sql: "AND event_date >= now() AND event_date <= now() + interval '30 days' \
                  ORDER BY coalesce(event_date, 'infinity'::timestamptz), id LIMIT 21",
        },
        Case {
            label: "20..50 USD, sort=price",
            query: "limit=20&sort=price&minPrice=20&maxPrice=50",
            sql: "AND price >= 2000 AND price <= 5000 ORDER BY price, id LIMIT 21",
        },
        Case {
            label: "q=tosca milan, sort=date",
            query: "limit=20&sort=date&q=tosca%20milan",
            sql: "AND search @@ websearch_to_tsquery('simple', 'tosca milan') \
                  ORDER BY coalesce(event_date, 'infinity'::timestamptz), id LIMIT 21",
        },
    ]
}

/// Lists `count` tickets straight into the table, spread over events,
/// venues, cities, dates up to a year ahead and prices from 5 to 500, with
/// one in thirteen reserved; then analyses it.
async fn seed(pool: &sqlx::PgPool, count: usize) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO tickets (id, title, price, user_id, order_id, event_name, venue, city, \
                              event_date, section, seat_row, seat)
         SELECT gen_random_uuid(),
                'Ticket ' || n,
                500 + (n * 7919) % 49500,
                gen_random_uuid(),
                CASE WHEN n % 13 = 0 THEN gen_random_uuid() END,
                (ARRAY['Radiohead', 'Tosca', 'Cup final', 'Hamlet', 'Coldplay', 'Aida',
                       'Jazz night', 'Chess open', 'Swan Lake', 'Derby'])[1 + n % 10]
                    || ' ' || (n % 97),
                (ARRAY['O2 Arena', 'La Scala', 'Wembley', 'Globe', 'Olympia', 'Arena',
                       'Blue Note', 'Town Hall'])[1 + n % 8],
                (ARRAY['London', 'Milan', 'Paris', 'Berlin', 'Verona', 'Madrid', 'Oslo',
                       'Rome', 'Vienna', 'Prague', 'Lisbon'])[1 + n % 11],
                now() + ((n * 31) % 525600) * interval '1 minute',
                'S' || (n % 20), chr(65 + n % 26), (n % 40)::text
         FROM generate_series(1, $1::int) AS n",
    )
    .bind(i64::try_from(count)?)
    .execute(pool)
    .await
    .context("seeding tickets")?;
    sqlx::query("ANALYZE tickets")
        .execute(pool)
        .await
        .context("analysing tickets")?;
    Ok(())
}

/// What `psql` prints for `sql`, unaligned and without headers.
fn psql(database_url: &str, sql: &str) -> anyhow::Result<String> {
    let output = Command::new("psql")
        .args([database_url, "-qAtX", "-c", sql])
        .output()
        .context("running psql")?;
    anyhow::ensure!(
        output.status.success(),
        "psql: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8(output.stdout)?)
}

/// The median of the `Execution Time` `EXPLAIN ANALYZE` reports over `runs`.
fn explain_analyze(database_url: &str, sql: &str, runs: usize) -> anyhow::Result<Duration> {
    let mut times = Vec::new();
    for _ in 0..runs {
        let text = psql(database_url, &format!("EXPLAIN ANALYZE {sql}"))?;
        let ms: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix("Execution Time: "))
            .and_then(|l| l.trim_end_matches(" ms").parse().ok())
            .context("no Execution Time in the plan")?;
        times.push(Duration::from_secs_f64(ms / 1000.0));
    }
    Ok(Summary::of(&times).p50)
}

/// Search latency of the tickets API over many tickets, beside the same
/// statements' `EXPLAIN ANALYZE` time.
#[derive(Parser)]
#[command(name = "bench-search")]
struct Args {
    /// Tickets listed before searching.
    #[arg(long, default_value_t = 100_000, value_parser = positive())]
    tickets: usize,
    /// Requests per typical search.
    #[arg(long, default_value_t = 200, value_parser = positive())]
    requests: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Args { tickets, requests } = Args::parse();
    let db = TestDatabase::create_empty().await;
    let settings = tickets::config::Settings {
        common: testing::common_settings(&testing::unique_prefix()),
        database_url: db.url.clone(),
    };
    let lifecycle = Lifecycle::new();
    let service = tickets::startup::build(&settings, &lifecycle).await?;
    let server = TestServer::start(service.into_app(), lifecycle).await;
    let client = reqwest::Client::new();
    let base = server.address.clone();

    let seeding = Instant::now();
    seed(&db.pool, tickets).await?;
    println!(
        "{tickets} tickets seeded in {:.1}s; {} requests per query; build: {}",
        seeding.elapsed().as_secs_f64(),
        requests,
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );

    let now = chrono::Utc::now();
    let stamp =
        |at: chrono::DateTime<chrono::Utc>| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    for case in cases() {
        let query = case
            .query
            .replace("NOW", &stamp(now))
            .replace("IN30", &stamp(now + chrono::Duration::days(30)));
        let url = format!("{base}/api/tickets?{query}");
        // Warm the connection pool and PostgreSQL's caches.
        for _ in 0..5 {
            client.get(&url).send().await?.error_for_status()?;
        }
        let mut samples = Vec::with_capacity(requests);
        let mut found = 0;
        for _ in 0..requests {
            let start = Instant::now();
            let response = client.get(&url).send().await?.error_for_status()?;
            let body: Vec<serde_json::Value> = response.json().await?;
            samples.push(start.elapsed());
            found = body.len();
        }
        // The store reads few text matches first, as tickets' store::search
        // decides with the same count.
        let sql = match case.sql.split_once(" ORDER BY") {
            Some((filter, order)) if filter.contains("search @@") => {
                let count = psql(
                    &db.url,
                    &format!(
                        "SELECT count(*) FROM (SELECT 1 FROM tickets WHERE {LISTED} {filter} \
                         LIMIT 1000) AS m"
                    ),
                )?;
                if count.trim().parse::<i64>()? < 1000 {
                    format!(
                        "WITH matches AS MATERIALIZED (SELECT {COLUMNS} FROM tickets WHERE \
                         {LISTED} {filter}) SELECT {COLUMNS} FROM matches WHERE TRUE \
                         ORDER BY{order}"
                    )
                } else {
                    format!("SELECT {COLUMNS} FROM tickets WHERE {LISTED} {}", case.sql)
                }
            }
            _ => format!("SELECT {COLUMNS} FROM tickets WHERE {LISTED} {}", case.sql),
        };
        let explained = explain_analyze(&db.url, &sql, 10)?;
        println!(
            "{}  rows={found:<3} EXPLAIN ANALYZE p50={:>6.2}ms",
            Summary::of(&samples).line(case.label),
            explained.as_secs_f64() * 1000.0
        );
    }

    // A later page: the cursor of the price order, from the first page's link.
    let first = client
        .get(format!("{base}/api/tickets?limit=20&sort=price&q=london"))
        .send()
        .await?
        .error_for_status()?;
    let link = first
        .headers()
        .get("link")
        .and_then(|l| l.to_str().ok())
        .and_then(|l| Some(l[l.find('<')? + 1..l.find('>')?].to_string()))
        .context("a next page")?;
    let mut samples = Vec::with_capacity(requests);
    for _ in 0..requests {
        let start = Instant::now();
        client
            .get(format!("{base}{link}"))
            .send()
            .await?
            .error_for_status()?;
        samples.push(start.elapsed());
    }
    println!(
        "{}",
        Summary::of(&samples).line("q=london, sort=price, page 2")
    );
    Ok(())
}
