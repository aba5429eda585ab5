//! Prometheus metrics: one recorder per process, `GET /metrics` in the
//! Prometheus text format, the HTTP request metrics every router gets from
//! [`crate::http::finish`], and the samplers that turn the state of a
//! service's database (outbox backlog, pool use) into gauges.
//!
//! Code anywhere in the process records with the `metrics` crate's macros;
//! until [`install`] has run they record nothing, so every path that builds
//! an app or starts a service's background work installs it first.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::lifecycle::Lifecycle;

/// Requests answered, by `method`, `route` and `status` (counter).
pub const HTTP_REQUESTS: &str = "http_requests_total";
/// Time from a request's arrival to its response head, by `method`, `route`
/// and `status` (histogram, seconds).
pub const HTTP_REQUEST_DURATION: &str = "http_request_duration_seconds";
/// Outbox rows committed but not yet published, by `service` (gauge).
pub const OUTBOX_PENDING_ROWS: &str = "outbox_pending_rows";
/// Age of the oldest unpublished outbox row, by `service`; 0 when none is
/// pending (gauge, seconds).
pub const OUTBOX_OLDEST_PENDING_AGE: &str = "outbox_oldest_pending_age_seconds";
/// Connections of the service's pool, by `service` and `state` (`in_use` or
/// `idle`) (gauge).
pub const DB_POOL_CONNECTIONS: &str = "db_pool_connections";

/// The `route` label of a request that matched no route. Raw paths would give
/// every probe and typo a series of its own.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// The `status` label of a request whose client went away before it was
/// answered (nginx's "client closed request").
const CLIENT_CLOSED: &str = "499";

/// Histogram buckets, in seconds, for every histogram of the process: HTTP
/// latency, event lag and expiry lateness all live between a millisecond and
/// a few minutes.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    120.0, 300.0,
];

/// How often the samplers read the outbox and the pool.
const SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// The media type of the Prometheus text exposition format.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process's Prometheus recorder, once; later calls return the
/// same handle, so a process (or a test) that builds several apps shares one
/// registry. If another recorder was installed first, this logs a warning
/// and `/metrics` stays empty.
pub fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        // Only an empty bucket list is refused.
        let builder = match PrometheusBuilder::new().set_buckets(BUCKETS) {
            Ok(builder) => builder,
            Err(e) => {
                tracing::warn!(error = %e, "histogram buckets refused; histograms become summaries");
                PrometheusBuilder::new()
            }
        };
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if let Err(e) = metrics::set_global_recorder(recorder) {
            tracing::warn!(error = %e, "another metrics recorder is installed; /metrics will be empty");
        }
        describe();
        handle
    })
}

fn describe() {
    metrics::describe_counter!(HTTP_REQUESTS, "HTTP requests answered");
    metrics::describe_histogram!(
        HTTP_REQUEST_DURATION,
        metrics::Unit::Seconds,
        "Time from a request's arrival to its response head"
    );
    metrics::describe_gauge!(
        OUTBOX_PENDING_ROWS,
        "Outbox rows committed but not yet published"
    );
    metrics::describe_gauge!(
        OUTBOX_OLDEST_PENDING_AGE,
        metrics::Unit::Seconds,
        "Age of the oldest unpublished outbox row (0 when none is pending)"
    );
    metrics::describe_gauge!(
        DB_POOL_CONNECTIONS,
        "Database pool connections by state (in_use, idle)"
    );
}

/// `GET /metrics`: every metric of the process in the Prometheus text format.
pub async fn render() -> Response {
    let handle = install();
    // Rendering drains the histograms too; upkeep also bounds the memory of
    // metrics nobody has scraped for a while.
    handle.run_upkeep();
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(TEXT_FORMAT))],
        handle.render(),
    )
        .into_response()
}

/// The `route` label of a request: the route pattern it matched (e.g.
/// `/api/tickets/{id}`), or [`UNMATCHED_ROUTE`].
pub fn route_of<B>(request: &axum::http::Request<B>) -> String {
    request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED_ROUTE, MatchedPath::as_str)
        .to_owned()
}

/// Middleware counting and timing every request by method, matched route and
/// status. A request dropped before its answer (the client went away) counts
/// with status 499.
pub async fn track_requests(request: Request, next: Next) -> Response {
    let mut timer = RequestTimer {
        method: request.method().clone(),
        route: route_of(&request),
        started: Instant::now(),
        status: None,
    };
    let response = next.run(request).await;
    timer.status = Some(response.status().as_u16());
    response
}

/// Records one request when dropped: after the response head, or when the
/// request's future is dropped before it.
struct RequestTimer {
    method: Method,
    route: String,
    started: Instant,
    status: Option<u16>,
}

impl Drop for RequestTimer {
    fn drop(&mut self) {
        let status = self
            .status
            .map_or_else(|| CLIENT_CLOSED.to_owned(), |s| s.to_string());
        let labels = [
            ("method", self.method.as_str().to_owned()),
            ("route", std::mem::take(&mut self.route)),
            ("status", status),
        ];
        metrics::counter!(HTTP_REQUESTS, &labels).increment(1);
        metrics::histogram!(HTTP_REQUEST_DURATION, &labels)
            .record(self.started.elapsed().as_secs_f64());
    }
}

/// Installs the recorder and starts, on `lifecycle`, the task that samples
/// `service`'s outbox backlog and database pool every few seconds into
/// [`OUTBOX_PENDING_ROWS`], [`OUTBOX_OLDEST_PENDING_AGE`] and
/// [`DB_POOL_CONNECTIONS`]. Call it before the service's relay and listeners
/// start, so that their first events are counted too. A failed sample (the
/// database is down) is logged and leaves the gauges at their last values.
pub fn spawn_samplers(lifecycle: &Lifecycle, service: &'static str, pool: PgPool) {
    install();
    lifecycle.spawn(move |shutdown| sample_until(shutdown, service, pool));
}

async fn sample_until(shutdown: CancellationToken, service: &'static str, pool: PgPool) {
    let mut ticks = tokio::time::interval(SAMPLE_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        sample_pool(service, &pool);
        // A slow database must not hold up shutdown.
        let sampled = tokio::select! {
            () = shutdown.cancelled() => return,
            sampled = sample_outbox(service, &pool) => sampled,
        };
        if let Err(e) = sampled {
            tracing::warn!(
                service,
                error = format!("{e:#}"),
                "cannot sample the outbox"
            );
        }
    }
}

fn sample_pool(service: &'static str, pool: &PgPool) {
    let size = pool.size();
    let idle = u32::try_from(pool.num_idle()).unwrap_or(u32::MAX).min(size);
    metrics::gauge!(DB_POOL_CONNECTIONS, "service" => service, "state" => "in_use")
        .set(f64::from(size - idle));
    metrics::gauge!(DB_POOL_CONNECTIONS, "service" => service, "state" => "idle")
        .set(f64::from(idle));
}

async fn sample_outbox(service: &'static str, pool: &PgPool) -> anyhow::Result<()> {
    use anyhow::Context as _;

    let (pending, oldest_age): (i64, f64) = sqlx::query_as(
        "SELECT count(*), \
                COALESCE(EXTRACT(EPOCH FROM now() - min(created_at))::float8, 0) \
         FROM outbox WHERE published_at IS NULL",
    )
    .fetch_one(pool)
    .await
    .context("counting the pending outbox rows")?;
    metrics::gauge!(OUTBOX_PENDING_ROWS, "service" => service).set(pending as f64);
    metrics::gauge!(OUTBOX_OLDEST_PENDING_AGE, "service" => service).set(oldest_age.max(0.0));
    Ok(())
}

/// Reading a `/metrics` page in tests.
#[cfg(feature = "testing")]
pub mod scrape {
    /// The sum of the samples named `name` whose labels include every pair
    /// of `labels`, in the Prometheus text `page`; `None` when there is none.
    pub fn value(page: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut found = None;
        for line in page.lines().filter(|l| !l.starts_with('#')) {
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let (series_name, series_labels) = match series.split_once('{') {
                Some((n, rest)) => (n, parse_labels(rest.trim_end_matches('}'))),
                None => (series, Vec::new()),
            };
            if series_name != name
                || !labels
                    .iter()
                    .all(|(k, v)| series_labels.iter().any(|(sk, sv)| sk == k && sv == v))
            {
                continue;
            }
            if let Ok(value) = value.parse::<f64>() {
                *found.get_or_insert(0.0) += value;
            }
        }
        found
    }

    /// `k="v",k2="v2"` into pairs, undoing the format's escapes.
    fn parse_labels(text: &str) -> Vec<(String, String)> {
        let mut pairs = Vec::new();
        let mut chars = text.chars().peekable();
        loop {
            let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
            if key.is_empty() || chars.next() != Some('"') {
                return pairs;
            }
            let mut value = String::new();
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => match chars.next() {
                        Some('n') => value.push('\n'),
                        Some(other) => value.push(other),
                        None => break,
                    },
                    other => value.push(other),
                }
            }
            pairs.push((key, value));
            if chars.peek() == Some(&',') {
                chars.next();
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::value;

        const PAGE: &str = "# TYPE http_requests_total counter\n\
            http_requests_total{method=\"GET\",route=\"/api/tickets/{id}\",status=\"200\"} 3\n\
            http_requests_total{method=\"GET\",route=\"/api/tickets/{id}\",status=\"404\"} 1\n\
            http_requests_total{method=\"POST\",route=\"/a\\\"b\",status=\"201\"} 2\n\
            outbox_pending_rows{service=\"orders\"} 7\n\
            process_up 1\n";

        #[test]
        fn sums_the_series_that_have_every_label_asked_for() {
            let route = ("route", "/api/tickets/{id}");
            assert_eq!(value(PAGE, "http_requests_total", &[route]), Some(4.0));
            assert_eq!(
                value(PAGE, "http_requests_total", &[route, ("status", "404")]),
                Some(1.0)
            );
        }

        #[test]
        fn reads_escaped_values_and_series_without_labels() {
            assert_eq!(
                value(PAGE, "http_requests_total", &[("route", "/a\"b")]),
                Some(2.0)
            );
            assert_eq!(value(PAGE, "process_up", &[]), Some(1.0));
        }

        #[test]
        fn is_none_when_no_series_matches() {
            assert_eq!(
                value(PAGE, "outbox_pending_rows", &[("service", "tickets")]),
                None
            );
            assert_eq!(value(PAGE, "outbox_pending", &[]), None);
        }
    }
}
