//! Replica lag of a run: per ticket, the moment it reached the replica minus
//! the moment the API answered 201, kept in the order the tickets were sent
//! so that the start and the end of a run can be compared.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::Summary;

/// The lag of each ticket of a run, in send order.
pub struct Lags {
    /// None for a ticket that never reached the replica.
    pub per_ticket: Vec<Option<Duration>>,
    /// Tickets that reached the replica before the API's answer was read
    /// (counted with lag 0).
    pub early: usize,
}

impl Lags {
    /// Matches `created` (ticket, answered at; in send order) with
    /// `arrivals` (ticket, in the replica at).
    pub fn of(created: &[(Uuid, DateTime<Utc>)], arrivals: &HashMap<Uuid, DateTime<Utc>>) -> Lags {
        let mut early = 0;
        let per_ticket = created
            .iter()
            .map(|(id, answered)| {
                let arrived = arrivals.get(id)?;
                Some((*arrived - *answered).to_std().unwrap_or_else(|_| {
                    early += 1;
                    Duration::ZERO
                }))
            })
            .collect();
        Lags { per_ticket, early }
    }

    /// The lags of the tickets that arrived.
    pub fn arrived(&self) -> Vec<Duration> {
        self.per_ticket.iter().flatten().copied().collect()
    }

    /// Tickets that never reached the replica.
    pub fn missing(&self) -> usize {
        self.per_ticket.iter().filter(|l| l.is_none()).count()
    }

    /// The lag p99 of the first and of the last third of the run; None when
    /// a third has no arrived ticket.
    pub fn thirds(&self) -> Option<(Duration, Duration)> {
        let third = self.per_ticket.len() / 3;
        let p99 = |lags: &[Option<Duration>]| {
            let arrived: Vec<Duration> = lags.iter().flatten().copied().collect();
            Summary::try_of(&arrived).map(|s| s.p99)
        };
        Some((
            p99(&self.per_ticket[..third])?,
            p99(&self.per_ticket[self.per_ticket.len() - third..])?,
        ))
    }

    /// The lag grew over the run: the last third's p99 is above both twice
    /// the first third's and the first third's plus 250 ms (a quarter of the
    /// 1 s bound: jitter of a lag of tens of milliseconds on a busy machine
    /// is not growth).
    pub fn grew(&self) -> bool {
        self.thirds().is_some_and(|(first, last)| {
            last > first * 2 && last > first + Duration::from_millis(250)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(lags_ms: &[Option<i64>]) -> Lags {
        let start = Utc::now();
        let mut created = Vec::new();
        let mut arrivals = HashMap::new();
        for (i, lag) in lags_ms.iter().enumerate() {
            let id = Uuid::now_v7();
            let answered = start + chrono::Duration::milliseconds(i as i64);
            created.push((id, answered));
            if let Some(lag) = lag {
                arrivals.insert(id, answered + chrono::Duration::milliseconds(*lag));
            }
        }
        Lags::of(&created, &arrivals)
    }

    #[test]
    fn a_ticket_that_never_arrived_is_missing_not_fast() {
        let lags = run(&[Some(5), None, Some(7)]);
        assert_eq!(lags.missing(), 1);
        assert_eq!(
            lags.arrived(),
            vec![Duration::from_millis(5), Duration::from_millis(7)]
        );
    }

    #[test]
    fn an_arrival_before_the_answer_counts_as_early_with_no_lag() {
        let lags = run(&[Some(-3), Some(4)]);
        assert_eq!(lags.early, 1);
        assert_eq!(lags.per_ticket[0], Some(Duration::ZERO));
    }

    #[test]
    fn a_lag_that_climbs_through_the_run_grew() {
        let lags = run(&(0..300).map(|i| Some(10 + i * 10)).collect::<Vec<_>>());
        assert!(lags.grew());
    }

    #[test]
    fn a_steady_lag_with_a_slow_start_did_not_grow() {
        let mut ms: Vec<Option<i64>> = vec![Some(400); 10];
        ms.extend(std::iter::repeat_n(Some(20), 290));
        assert!(!run(&ms).grew());
    }

    #[test]
    fn jitter_on_a_small_lag_is_not_growth() {
        let ms: Vec<Option<i64>> = (0..300)
            .map(|i| Some(if i < 200 { 70 } else { 230 }))
            .collect();
        assert!(!run(&ms).grew());
    }
}
