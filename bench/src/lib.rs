//! Shared pieces of the benchmarks: latency statistics, the build profile
//! line, and the marketplace (tickets and orders services) started
//! in-process against fresh databases and a JetStream namespace of its own.

pub mod baseline;
pub mod lag;
pub mod load;
pub mod marketplace;
pub mod replica;

use std::time::Duration;

/// Latency percentiles of a set of samples.
pub struct Summary {
    pub count: usize,
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub mean: Duration,
}

impl Summary {
    /// Summarises `samples` (any order). Panics on an empty set.
    pub fn of(samples: &[Duration]) -> Summary {
        assert!(!samples.is_empty(), "no samples");
        let mut sorted = samples.to_vec();
        sorted.sort();
        let at = |q: f64| sorted[((sorted.len() as f64 - 1.0) * q).round() as usize];
        let total: Duration = sorted.iter().sum();
        Summary {
            count: sorted.len(),
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            max: sorted[sorted.len() - 1],
            mean: total / sorted.len() as u32,
        }
    }

    /// Like [`Summary::of`], but `None` for an empty set.
    pub fn try_of(samples: &[Duration]) -> Option<Summary> {
        (!samples.is_empty()).then(|| Summary::of(samples))
    }

    /// One line: `label  n=…  p50=… p90=… p99=… max=… mean=…` in milliseconds.
    pub fn line(&self, label: &str) -> String {
        format!(
            "{label:<34} n={:<5} p50={:>8.1}ms p90={:>8.1}ms p99={:>8.1}ms max={:>8.1}ms mean={:>8.1}ms",
            self.count,
            ms(self.p50),
            ms(self.p90),
            ms(self.p99),
            ms(self.max),
            ms(self.mean)
        )
    }
}

/// A duration in (fractional) milliseconds, for printing.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `build: debug` or `build: release`, the first line every benchmark
/// prints: debug figures are not comparable with release ones.
pub fn build_line() -> String {
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    format!(
        "build: {profile}; {} cores",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    )
}

/// A command-line count that must be at least 1 (`value_parser = positive()`).
pub fn positive() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::<usize>::new().range(1..)
}
