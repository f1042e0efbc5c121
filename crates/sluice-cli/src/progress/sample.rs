//! Samples of a run's statistics, taken ten times a second: rates over the last minute
//! and how often each binding held the batch back.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::Ordering;
use std::time::Duration;

use sluice::{Binding, Client, RateNow};
use tokio::time::Instant;

use super::Shared;

/// One look at the run.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Seconds since the display started.
    pub elapsed: Duration,
    /// Lines with a record, earlier runs' included.
    pub done: u64,
    /// Input lines, once counted.
    pub total: Option<u64>,
    /// Lines an earlier run did.
    pub resumed: u64,
    pub ok: u64,
    pub failed: u64,
    pub failed_by_kind: Vec<(String, u64)>,
    pub retries: u64,
    pub rate_limited: u64,
    pub in_flight: usize,
    pub concurrency: usize,
    /// Over the last minute (or since the start, if shorter).
    pub requests_per_s: f64,
    pub prompt_tokens_per_s: f64,
    pub completion_tokens_per_s: f64,
    /// Admitted rates in force and their limits, per minute.
    pub rpm: RateNow,
    pub tpm: RateNow,
    pub binding: Binding,
    /// Draining after the first stop signal.
    pub draining: bool,
    /// Time to the end at the current rate, once the total is known.
    pub eta: Option<Duration>,
    /// Dollars spent, earlier runs included; `None` while no success had a price.
    pub cost: Option<f64>,
    /// Successes whose model has no price (their cost is left out of `cost`).
    pub unpriced: u64,
    /// The whole input's cost at this run's cost per request, once the total is known.
    pub cost_projected: Option<f64>,
    /// Each endpoint's share, with several (`--endpoints`); empty with one.
    pub endpoints: Vec<sluice::fleet::EndpointStats>,
}

/// Time each binding held the batch back.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BindingShares {
    counts: BTreeMap<Binding, u64>,
}

impl BindingShares {
    /// Each binding's share of the samples taken while the batch had work, largest first.
    pub fn shares(&self) -> Vec<(Binding, f64)> {
        let busy: u64 = self
            .counts
            .iter()
            .filter(|(b, _)| **b != Binding::Idle)
            .map(|(_, n)| n)
            .sum();
        let mut out: Vec<(Binding, f64)> = self
            .counts
            .iter()
            .filter(|(b, _)| **b != Binding::Idle)
            .map(|(b, n)| (*b, *n as f64 / busy.max(1) as f64))
            .collect();
        out.sort_by(|a, b| b.1.total_cmp(&a.1));
        out
    }

    /// Samples taken of each binding, `Idle` included.
    pub fn counts(&self) -> impl Iterator<Item = (Binding, u64)> + '_ {
        self.counts.iter().map(|(b, n)| (*b, *n))
    }

    /// The binding that held the batch back most, and its share.
    pub fn top(&self) -> Option<(Binding, f64)> {
        self.shares().into_iter().next()
    }
}

#[derive(Debug, Clone, Copy)]
struct Point {
    at: Instant,
    finished: u64,
    prompt: u64,
    completion: u64,
}

/// One step of the run's time series: cumulative counts at `t` seconds, and the binding
/// that held the run back most since the step before.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SeriesPoint {
    pub t: f64,
    pub finished: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub rate_limited: u64,
    pub retries: u64,
    /// Dollars spent so far by this run (priced results only).
    pub cost_usd: f64,
    pub binding: &'static str,
}

/// Seconds between two samples (the display's tick).
pub const TICK_SECS: f64 = 0.1;

/// Seconds between two points of the series.
pub const SERIES_STEP: Duration = Duration::from_secs(10);

/// Keeps the last minute of points, the binding counts and the series.
pub struct Sampler {
    start: Instant,
    points: VecDeque<Point>,
    shares: BindingShares,
    /// Binding counts since the last series point.
    step: BindingShares,
    series: Vec<SeriesPoint>,
    concurrency: usize,
}

const WINDOW: Duration = Duration::from_secs(60);

impl Sampler {
    pub fn new(concurrency: usize) -> Self {
        Sampler {
            start: Instant::now(),
            points: VecDeque::new(),
            shares: BindingShares::default(),
            step: BindingShares::default(),
            series: Vec::new(),
            concurrency,
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    pub fn shares(&self) -> BindingShares {
        self.shares.clone()
    }

    /// The series so far, with a last point for now.
    pub fn series(&mut self, client: &Client) -> Vec<SeriesPoint> {
        self.push_point(client, Instant::now());
        std::mem::take(&mut self.series)
    }

    fn push_point(&mut self, client: &Client, now: Instant) {
        let stats = client.stats();
        self.series.push(SeriesPoint {
            t: now.duration_since(self.start).as_secs_f64(),
            finished: stats.finished(),
            prompt_tokens: stats.prompt_tokens,
            completion_tokens: stats.completion_tokens,
            rate_limited: stats.rate_limited,
            retries: stats.retries,
            cost_usd: stats.cost,
            binding: self.step.top().map_or(Binding::Idle, |(b, _)| b).code(),
        });
        self.step = BindingShares::default();
    }

    /// Takes a sample now.
    pub fn sample(&mut self, client: &Client, shared: &Shared) -> Snapshot {
        let now = Instant::now();
        let stats = client.stats();
        let binding = client.binding();
        *self.shares.counts.entry(binding).or_default() += 1;
        *self.step.counts.entry(binding).or_default() += 1;
        let due = self.start + SERIES_STEP * (self.series.len() as u32 + 1);
        if now >= due {
            self.push_point(client, now);
        }
        let finished = stats.finished();
        let point = Point {
            at: now,
            finished,
            prompt: stats.prompt_tokens,
            completion: stats.completion_tokens,
        };
        self.points.push_back(point);
        while self
            .points
            .front()
            .is_some_and(|p| now.duration_since(p.at) > WINDOW)
        {
            self.points.pop_front();
        }
        let first = self.points.front().copied().unwrap_or(point);
        let span = now.duration_since(first.at).as_secs_f64().max(1e-9);
        let per_s = |a: u64, b: u64| {
            if span < 0.5 {
                0.0
            } else {
                (a - b) as f64 / span
            }
        };
        let requests_per_s = per_s(finished, first.finished);
        let resumed = shared.resumed.load(Ordering::Relaxed);
        let total = shared.total();
        let done = resumed + finished;
        let eta = total.and_then(|t| {
            let left = t.saturating_sub(done);
            (requests_per_s > 0.0).then(|| Duration::from_secs_f64(left as f64 / requests_per_s))
        });
        let limits = client.limits_now();
        let cost = stats
            .known_cost()
            .map(|c| c + shared.earlier_cost().unwrap_or(0.0));
        let priced = stats.ok - stats.unpriced;
        let cost_projected = match (total, cost) {
            (Some(t), Some(c)) if priced > 0 => {
                Some(c + stats.cost / finished.max(1) as f64 * t.saturating_sub(done) as f64)
            }
            _ => None,
        };
        Snapshot {
            elapsed: now.duration_since(self.start),
            done,
            total,
            resumed,
            ok: stats.ok,
            failed: stats.failed_total(),
            failed_by_kind: stats
                .failed
                .iter()
                .map(|(k, n)| (k.code().to_owned(), *n))
                .collect(),
            retries: stats.retries,
            rate_limited: stats.rate_limited,
            in_flight: client.in_flight(),
            concurrency: self.concurrency,
            requests_per_s,
            prompt_tokens_per_s: per_s(stats.prompt_tokens, first.prompt),
            completion_tokens_per_s: per_s(stats.completion_tokens, first.completion),
            rpm: limits.requests,
            tpm: limits.tokens,
            binding,
            draining: shared.draining.load(Ordering::Relaxed),
            eta,
            cost,
            unpriced: stats.unpriced,
            cost_projected,
            endpoints: {
                let split = client.endpoints();
                if split.len() > 1 { split } else { Vec::new() }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_leave_out_idle_and_sort_largest_first() {
        let mut s = BindingShares::default();
        s.counts.insert(Binding::Idle, 50);
        s.counts.insert(Binding::Tokens, 30);
        s.counts.insert(Binding::Requests, 10);
        let shares = s.shares();
        assert_eq!(shares[0].0, Binding::Tokens);
        assert!((shares[0].1 - 0.75).abs() < 1e-9);
        assert_eq!(s.top().map(|(b, _)| b), Some(Binding::Tokens));
        assert_eq!(BindingShares::default().top(), None);
    }
}
