//! How fast the event pipeline carries a flash sale: a ticket written through
//! the tickets API goes to the outbox, the relay publishes `ticket.created`
//! to JetStream, and the orders service's listener applies it to its tickets
//! replica. Prints, in order:
//!
//! 1. the raw JetStream baseline on this machine (async-nats alone, same
//!    payload size, file storage): messages/s published and consumed;
//! 2. the highest rate the API itself sustains (closed model: N clients);
//! 3. for each `--rates` step (open model, a fresh marketplace each): the
//!    achieved rate, API latency, replica lag p50/p99/max and whether the lag
//!    grew over the run; two verdicts, the API's (every request answered, at
//!    95% of the rate) and the pipeline's (lag p99 under 1 s, not growing);
//!    the highest rate at which both hold, its ratio to the baseline, and
//!    both verdicts at the probe's rate;
//! 4. recovery: two orders instances share the consumers, one is killed
//!    without a graceful shutdown while it holds deliveries and events flow,
//!    and the time until every ticket is in the replica.
//!
//! With `--batches 1,64` every rate runs once per listener batch size, side
//! by side (1: every event in a transaction of its own).
//!
//! `cargo run --release -p buytickets-bench --bin bench-pipeline -- --duration 60 --rates 200,400,800,1600`

use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream::consumer;
use buytickets_bench::baseline::{self, Baseline};
use buytickets_bench::lag::Lags;
use buytickets_bench::load::{self, LATE, OpenRun, TicketClient};
use buytickets_bench::marketplace::{self, DEFAULT_LISTENER_BATCH, Host, Marketplace};
use buytickets_bench::{Summary, build_line, ms, positive, replica};
use chrono::{DateTime, Utc};
use clap::{Parser, ValueEnum};
use common::bus::Bus;
use common::events::{Event as _, Stream, TicketCreated};
use common::testing::{self, TestDatabase};
use uuid::Uuid;

/// The lag a rate must keep its p99 under to hold.
const LAG_BOUND: Duration = Duration::from_secs(1);

/// Throughput and lag of the event pipeline (outbox → JetStream → replica)
/// against the raw JetStream baseline, and recovery after a killed replica.
#[derive(Parser)]
#[command(name = "bench-pipeline")]
struct Args {
    /// Open-model rates to try, ticket creations per second (tried lowest
    /// first; the rest are skipped after the first that does not hold).
    #[arg(long, value_delimiter = ',', default_value = "250,500,1000,2000", value_parser = positive())]
    rates: Vec<usize>,
    /// Seconds each rate runs (the figure is over 60).
    #[arg(long, default_value_t = 15, value_parser = positive())]
    duration: usize,
    /// Listener batch sizes of the orders service to compare (`LISTENER_BATCH`;
    /// 1 applies every event in a transaction of its own): every rate runs
    /// once per size, side by side.
    #[arg(long, value_delimiter = ',', default_value = "64", value_parser = positive())]
    batches: Vec<usize>,
    /// Try every rate even after one did not hold.
    #[arg(long)]
    keep_going: bool,
    /// Do not add a step at the rate the closed-model probe found.
    #[arg(long)]
    no_probe_rate: bool,
    /// Messages of the raw JetStream baseline.
    #[arg(long, default_value_t = 50_000, value_parser = positive())]
    baseline_messages: usize,
    /// Concurrent clients of the closed-model probe.
    #[arg(long, default_value_t = 32, value_parser = positive())]
    probe_clients: usize,
    /// Seconds of the closed-model probe.
    #[arg(long, default_value_t = 5, value_parser = positive())]
    probe_seconds: usize,
    /// Ticket creations per second during the recovery run.
    #[arg(long, default_value_t = 300, value_parser = positive())]
    recovery_rate: usize,
    /// Seconds of load before the two orders instances start: the backlog
    /// they find, part of which the killed one holds.
    #[arg(long, default_value_t = 3, value_parser = positive())]
    backlog: usize,
    /// Seconds of load after the kill.
    #[arg(long, default_value_t = 3, value_parser = positive())]
    run_after_kill: usize,
    /// Seconds to wait for the replica to hold every created ticket after a
    /// run (a run whose replica is not complete by then does not hold).
    #[arg(long, default_value_t = 120, value_parser = positive())]
    catch_up: usize,
    /// Which parts to run.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "baseline,probe,rates,recovery"
    )]
    only: Vec<Part>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Part {
    Baseline,
    Probe,
    Rates,
    Recovery,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let secs = |n: usize| Duration::from_secs(n as u64);
    println!("{}", build_line());

    let baseline = if args.only.contains(&Part::Baseline) {
        Some(run_baseline(args.baseline_messages).await?)
    } else {
        None
    };

    let api_rate = if args.only.contains(&Part::Probe) {
        Some(probe(args.probe_clients, secs(args.probe_seconds)).await?)
    } else {
        None
    };

    if args.only.contains(&Part::Rates) {
        let mut rates = args.rates.clone();
        // Rounded down to tens, so that the step is a rate the API reached,
        // not above it.
        let api_step = api_rate
            .filter(|_| !args.no_probe_rate)
            .map(|api| (api as usize / 10 * 10).max(10));
        rates.extend(api_step);
        rates.sort_unstable();
        rates.dedup();
        println!(
            "\n## Open model: {}s per rate, a fresh marketplace each; lag = ticket in the orders replica − API answered 201",
            args.duration
        );
        let mut results = Vec::new();
        for &batch in &args.batches {
            let mut result = BatchResult {
                batch,
                highest: None,
                at_api_rate: None,
            };
            for &rate in &rates {
                let step = rate_step(rate, batch, secs(args.duration), secs(args.catch_up)).await?;
                step.print();
                if Some(rate) == api_step {
                    result.at_api_rate = Some((step.api_verdict(), step.pipeline_verdict()));
                }
                match step.verdict() {
                    Ok(()) => result.highest = Some((rate, step.run.achieved_rate())),
                    Err(_) if args.keep_going => {}
                    Err(_) => {
                        let skipped: Vec<String> = rates
                            .iter()
                            .filter(|&&r| r > rate)
                            .map(|r| r.to_string())
                            .collect();
                        if !skipped.is_empty() {
                            println!("skipped higher rates: {}", skipped.join(", "));
                        }
                        break;
                    }
                }
            }
            results.push(result);
        }
        println!("\n## Result");
        for result in &results {
            result.print(api_rate, baseline.as_ref(), api_step);
        }
    }

    if args.only.contains(&Part::Recovery) {
        recovery(
            args.recovery_rate,
            secs(args.backlog),
            secs(args.run_after_kill),
            secs(args.catch_up),
        )
        .await?;
    }
    Ok(())
}

async fn run_baseline(messages: usize) -> anyhow::Result<Baseline> {
    let payload = baseline::ticket_created_payload()?;
    let prefix = testing::unique_prefix();
    let b = baseline::run(&testing::nats_url(), &prefix, messages, payload).await?;
    println!(
        "\n## Raw JetStream baseline: {} messages of {} bytes, file storage, {} publishes in flight, pull consumer with explicit acks",
        b.messages,
        b.payload_bytes,
        baseline::PUBLISH_WINDOW
    );
    println!(
        "publish: {:.0} msg/s ({:.2}s); consume + ack: {:.0} msg/s ({:.2}s)",
        b.publish_rate(),
        b.publish.as_secs_f64(),
        b.consume_rate(),
        b.consume.as_secs_f64()
    );
    Ok(b)
}

/// The closed-model probe: the rate `clients` busy clients get from the
/// API, on a fresh marketplace whose pipeline runs meanwhile.
async fn probe(clients: usize, duration: Duration) -> anyhow::Result<f64> {
    let market = Marketplace::start().await?;
    replica::record_arrivals(&market.orders_db.pool).await?;
    let client = TicketClient::new(&market.tickets.address)?;
    let run = load::closed(client, clients, duration).await;
    let in_replica = replica::arrived_count(&market.orders_db.pool).await?;
    println!(
        "\n## API alone (closed model): {clients} clients for {:?}",
        duration
    );
    println!(
        "{:.0} tickets/s created ({} created, {} failed); replica held {in_replica} of them when the load stopped",
        run.rate(),
        run.created,
        run.failed
    );
    if let Some(s) = Summary::try_of(&run.latencies) {
        println!("{}", s.line("POST /api/tickets (closed)"));
    }
    market.stop().await?;
    anyhow::ensure!(run.created > 0, "the probe created no ticket");
    Ok(run.rate())
}

/// What the rates made of one listener batch size.
struct BatchResult {
    batch: usize,
    /// The highest rate that held, and the rate it achieved.
    highest: Option<(usize, f64)>,
    /// The verdicts on the API and on the pipeline at the rate the
    /// closed-model probe found, if it ran.
    at_api_rate: Option<(Result<(), String>, Result<(), String>)>,
}

impl BatchResult {
    fn print(&self, api_rate: Option<f64>, baseline: Option<&Baseline>, api_step: Option<usize>) {
        let batch = self.batch;
        match self.highest {
            Some((rate, achieved)) => {
                println!(
                    "listener batch {batch}: highest rate with replica lag p99 < {LAG_BOUND:?}, not growing: {rate}/s (achieved {achieved:.0}/s)"
                );
                if let Some(api) = api_rate {
                    println!(
                        "  API alone (closed model): {api:.0}/s; pipeline / API: {:.2}",
                        achieved / api
                    );
                }
                if let Some(b) = baseline {
                    println!(
                        "  sustained events/s vs raw JetStream ({:.0}/s, the slower of publish and consume): ratio {:.3}",
                        b.pipeline_rate(),
                        achieved / b.pipeline_rate()
                    );
                }
            }
            None => {
                println!("listener batch {batch}: no rate held replica lag p99 < {LAG_BOUND:?}")
            }
        }
        if let Some(rate) = api_step {
            match &self.at_api_rate {
                Some((api, pipeline)) => {
                    let said = |verdict: &Result<(), String>, yes: &str, no: &str| match verdict {
                        Ok(()) => yes.to_string(),
                        Err(why) => format!("{no}: {why}"),
                    };
                    println!(
                        "  at the API's own rate ({rate}/s) the pipeline {}; the API {}",
                        said(pipeline, "holds", "does not hold"),
                        said(api, "keeps the rate", "does not keep the rate"),
                    );
                }
                None => println!("  the API's own rate ({rate}/s) was not tried"),
            }
        }
    }
}

/// One open-model rate and what the replica made of it.
struct Step {
    rate: usize,
    batch: usize,
    run: OpenRun,
    lags: Lags,
}

impl Step {
    /// Whether both the API and the pipeline kept up at this rate.
    fn verdict(&self) -> Result<(), String> {
        self.api_verdict()?;
        self.pipeline_verdict()
    }

    /// Whether the API answered every request, at 95% of the rate or more.
    fn api_verdict(&self) -> Result<(), String> {
        let failures = self.run.failures().count();
        if failures > 0 {
            return Err(format!("{failures} requests failed"));
        }
        let achieved = self.run.achieved_rate();
        if achieved < self.rate as f64 * 0.95 {
            return Err(format!("it answered {achieved:.0}/s"));
        }
        Ok(())
    }

    /// Whether the replica kept up with what the API accepted: every ticket
    /// arrived, lag p99 under [`LAG_BOUND`] and not growing.
    fn pipeline_verdict(&self) -> Result<(), String> {
        if self.lags.missing() > 0 {
            return Err(format!(
                "{} tickets never reached the replica",
                self.lags.missing()
            ));
        }
        let Some(lag) = Summary::try_of(&self.lags.arrived()) else {
            return Err("no ticket created".into());
        };
        if lag.p99 >= LAG_BOUND {
            return Err(format!("lag p99 {:.0} ms", ms(lag.p99)));
        }
        if self.lags.grew() {
            return Err("lag grew over the run".into());
        }
        Ok(())
    }

    fn print(&self) {
        let created = self
            .run
            .creations
            .iter()
            .filter(|c| c.result.is_ok())
            .count();
        println!(
            "\n### {}/s, listener batch {}: achieved {:.0}/s; {} sent, {created} created, {} failed; {} sends late (> {LATE:?}), most behind {:.1} ms",
            self.rate,
            self.batch,
            self.run.achieved_rate(),
            self.run.creations.len(),
            self.run.failures().count(),
            self.run.late(),
            ms(self.run.most_behind())
        );
        if let Some(first) = self.run.failures().next() {
            println!("first failure: {first}");
        }
        let api: Vec<Duration> = self
            .run
            .creations
            .iter()
            .filter(|c| c.result.is_ok())
            .map(|c| c.latency)
            .collect();
        if let Some(s) = Summary::try_of(&api) {
            println!("{}", s.line("API (from scheduled send)"));
        }
        if let Some(s) = Summary::try_of(&self.lags.arrived()) {
            println!("{}", s.line("replica lag"));
        }
        if let Some((first, last)) = self.lags.thirds() {
            println!(
                "lag p99 first third {:.1} ms, last third {:.1} ms: {}",
                ms(first),
                ms(last),
                if self.lags.grew() { "grew" } else { "steady" }
            );
        }
        if self.lags.missing() > 0 || self.lags.early > 0 {
            println!(
                "not in the replica after the catch-up wait: {}; in it before the answer was read: {}",
                self.lags.missing(),
                self.lags.early
            );
        }
        match self.api_verdict() {
            Ok(()) => println!("API: keeps the rate"),
            Err(why) => println!("API: does not keep the rate: {why}"),
        }
        match self.pipeline_verdict() {
            Ok(()) => println!("pipeline: holds"),
            Err(why) => println!("pipeline: does not hold: {why}"),
        }
    }
}

async fn rate_step(
    rate: usize,
    batch: usize,
    duration: Duration,
    catch_up: Duration,
) -> anyhow::Result<Step> {
    let market = Marketplace::with_listener_batch(batch).await?;
    replica::record_arrivals(&market.orders_db.pool).await?;
    let client = TicketClient::new(&market.tickets.address)?;
    let run = load::open(client, rate as f64, duration).await;
    let created = created(&run);
    replica::wait_for_arrivals(&market.orders_db.pool, created.len(), catch_up).await?;
    let arrivals = replica::arrivals(&market.orders_db.pool).await?;
    market.stop().await?;
    Ok(Step {
        rate,
        batch,
        run,
        lags: Lags::of(&created, &arrivals),
    })
}

/// The created tickets of a run, in schedule order, with the moment the API
/// answered.
fn created(run: &OpenRun) -> Vec<(Uuid, DateTime<Utc>)> {
    run.creations
        .iter()
        .filter_map(|c| c.result.as_ref().ok().copied())
        .collect()
}

/// The consumer of `ticket.created` the orders instances share.
async fn ticket_created_consumer(bus: &Bus) -> anyhow::Result<consumer::Info> {
    let stream = bus
        .jetstream()
        .get_stream(bus.name(Stream::Tickets.name()))
        .await
        .context("looking up the tickets stream")?;
    let name = bus.name(&common::listener::consumer_name(
        orders::SERVICE,
        TicketCreated::SUBJECT,
    ));
    stream
        .consumer_info(name)
        .await
        .context("reading the consumer")
}

/// Recovery after a killed replica. Tickets are listed at `rate` for
/// `before` with no orders instance running, so that a backlog waits in
/// JetStream; then one orders instance starts and pulls from it, a second
/// starts on the same database and namespace, and the first is killed
/// while it holds deliveries (unacknowledged), and the load goes on for
/// `after`. Prints how long after the kill every ticket is in the
/// replica: the held events come back only when the consumer's ack wait
/// expires and the surviving instance applies them.
async fn recovery(
    rate: usize,
    before: Duration,
    after: Duration,
    catch_up: Duration,
) -> anyhow::Result<()> {
    let prefix = testing::unique_prefix();
    let tickets_db = TestDatabase::create_empty().await;
    let orders_db = TestDatabase::create(&orders::MIGRATOR).await;
    replica::record_arrivals(&orders_db.pool).await?;
    let tickets_host = Host::new("tickets")?;
    let tickets = marketplace::start_tickets(&tickets_host, &prefix, &tickets_db).await?;
    let nats = async_nats::connect(testing::nats_url())
        .await
        .context("connecting to NATS")?;
    let bus = Bus::with_client(nats, &prefix);

    let client = TicketClient::new(&tickets.address)?;
    let load = tokio::spawn(load::open(client, rate as f64, before + after));
    tokio::time::sleep(before).await;

    // The doomed instance starts first, so that the deliveries out before
    // the survivor starts are its own; it still holds its current batch
    // when it is killed, right after the survivor is up.
    let mut doomed = Host::new("doomed-orders")?;
    let doomed_orders =
        marketplace::start_orders(&doomed, &prefix, &orders_db, DEFAULT_LISTENER_BATCH).await?;
    let delivering = testing::eventually(Duration::from_secs(10), || async {
        ticket_created_consumer(&bus)
            .await
            .is_ok_and(|info| info.num_ack_pending > 0)
    })
    .await;
    let survivor_host = Host::new("orders")?;
    let survivor =
        marketplace::start_orders(&survivor_host, &prefix, &orders_db, DEFAULT_LISTENER_BATCH)
            .await?;
    let pending = ticket_created_consumer(&bus).await.ok();
    let killed_at = Utc::now();
    doomed.kill();
    drop(doomed_orders);

    let run = load.await.context("the load task")?;
    let created = created(&run);
    let complete = replica::wait_for_arrivals(&orders_db.pool, created.len(), catch_up).await?;
    let arrivals = replica::arrivals(&orders_db.pool).await?;
    marketplace::clean_up(&prefix, &[&tickets, &survivor], &[&tickets_db, &orders_db]).await?;

    println!(
        "\n## Recovery: {rate}/s for {before:?} with no orders instance; one starts and pulls, a second starts, the first is killed without shutdown; load {after:?} more"
    );
    if !delivering {
        println!("note: the first instance had no delivery out within 10 s; the kill came anyway");
    }
    if let Some(info) = pending {
        println!(
            "just before the kill: {} deliveries unacknowledged (both instances), {} waiting in the stream",
            info.num_ack_pending, info.num_pending
        );
    }
    let lags = Lags::of(&created, &arrivals);
    let last_arrival = |answered_before_kill: bool| {
        created
            .iter()
            .filter(|(_, at)| !answered_before_kill || *at <= killed_at)
            .filter_map(|(id, _)| arrivals.get(id))
            .max()
            .map(|last| (*last - killed_at).to_std().unwrap_or_default())
    };
    if let Some(t) = last_arrival(true) {
        println!(
            "kill → every ticket listed before the kill in the replica: {:.2} s",
            t.as_secs_f64()
        );
    }
    if let Some(t) = last_arrival(false) {
        println!(
            "kill → every ticket in the replica: {:.2} s (load ran {:.2} s after the kill){}",
            t.as_secs_f64(),
            after.as_secs_f64(),
            if complete {
                ""
            } else {
                "; incomplete: some never arrived"
            }
        );
    }
    if let Some(s) = Summary::try_of(&lags.arrived()) {
        println!("{}", s.line("replica lag over the run"));
    }
    let missing = lags.missing();
    anyhow::ensure!(
        missing == 0,
        "{missing} tickets never reached the replica within {catch_up:?}"
    );
    Ok(())
}
