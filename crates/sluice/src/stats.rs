//! Statistics of a run: counts by outcome and kind, retries, 429s, tokens and latency
//! percentiles (hdrhistogram).

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::error::ErrorKind;
use crate::outcome::Success;

/// Running totals, kept by the engine and read with [`crate::Client::stats`].
#[derive(Debug, Clone)]
pub struct Stats {
    /// Requests that succeeded.
    pub ok: u64,
    /// Requests that failed for good, by kind.
    pub failed: BTreeMap<ErrorKind, u64>,
    /// Attempts sent.
    pub attempts: u64,
    /// Attempts after a request's first: counted when sent, so a retry that was planned
    /// and never sent (the run stopped first) is not one.
    pub retries: u64,
    /// 429 rate-limit answers received.
    pub rate_limited: u64,
    /// Prompt tokens reported by the server.
    pub prompt_tokens: u64,
    /// Completion tokens reported by the server.
    pub completion_tokens: u64,
    /// Prompt tokens the server read from its cache (part of `prompt_tokens`).
    pub cached_tokens: u64,
    /// Dollars spent by the successes whose model has a price.
    pub cost: f64,
    /// Successes whose model has no price: their cost is unknown.
    pub unpriced: u64,
    /// Latency of successful attempts, in microseconds.
    latency_us: Histogram<u64>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            ok: 0,
            failed: BTreeMap::new(),
            attempts: 0,
            retries: 0,
            rate_limited: 0,
            prompt_tokens: 0,
            completion_tokens: 0,
            cached_tokens: 0,
            cost: 0.0,
            unpriced: 0,
            // 1 µs to 1 hour at 3 significant digits; the bounds are constants that work.
            latency_us: Histogram::new_with_bounds(1, 3_600_000_000, 3)
                .expect("valid histogram bounds"),
        }
    }
}

impl Stats {
    /// An attempt went out; `attempt` is 1 for a request's first.
    pub(crate) fn record_attempt(&mut self, attempt: u32) {
        self.attempts += 1;
        self.retries += u64::from(attempt > 1);
    }

    pub(crate) fn record_success(&mut self, success: &Success, latency: Duration) {
        let usage = success.usage;
        self.ok += 1;
        self.prompt_tokens += usage.prompt_tokens;
        self.completion_tokens += usage.completion_tokens;
        self.cached_tokens += usage.cached_tokens;
        match success.cost {
            Some(c) => self.cost += c,
            None => self.unpriced += 1,
        }
        let us = (latency.as_micros() as u64).clamp(1, 3_600_000_000);
        let _ = self.latency_us.record(us);
    }

    pub(crate) fn record_failure(&mut self, kind: ErrorKind) {
        *self.failed.entry(kind).or_default() += 1;
    }

    /// Prompt and completion tokens together.
    pub fn total_tokens(&self) -> u64 {
        self.prompt_tokens + self.completion_tokens
    }

    /// Successes among the requests finished (1.0 when none has finished).
    pub fn success_rate(&self) -> f64 {
        match self.finished() {
            0 => 1.0,
            n => self.ok as f64 / n as f64,
        }
    }

    /// Requests that failed for good.
    pub fn failed_total(&self) -> u64 {
        self.failed.values().sum()
    }

    /// Requests finished either way.
    pub fn finished(&self) -> u64 {
        self.ok + self.failed_total()
    }

    /// Dollars spent, or `None` when no success had a price (cost unknown).
    pub fn known_cost(&self) -> Option<f64> {
        (self.ok > self.unpriced).then_some(self.cost)
    }

    /// Latency at quantile `q` (0 to 1) of successful attempts.
    pub fn latency(&self, q: f64) -> Duration {
        Duration::from_micros(self.latency_us.value_at_quantile(q))
    }

    /// Successful attempts that took at most `d` (for histogram buckets).
    pub fn latency_count_at_most(&self, d: Duration) -> u64 {
        let us = (d.as_micros() as u64).clamp(1, 3_600_000_000);
        self.latency_us.count_between(0, us)
    }

    /// The mean latency of successful attempts.
    pub fn latency_mean(&self) -> Duration {
        Duration::from_secs_f64(self.latency_us.mean() / 1e6)
    }

    /// The longest latency of a successful attempt.
    pub fn latency_max(&self) -> Duration {
        Duration::from_micros(self.latency_us.max())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_totals() {
        let mut s = Stats::default();
        for ms in 1..=100 {
            let success = Success {
                status: 200,
                request_id: None,
                body: bytes::Bytes::new(),
                usage: crate::outcome::Usage {
                    prompt_tokens: 2,
                    completion_tokens: 1,
                    cached_tokens: 1,
                    ..Default::default()
                },
                cost: (ms % 2 == 0).then_some(0.5),
            };
            s.record_success(&success, Duration::from_millis(ms));
        }
        assert_eq!(s.cached_tokens, 100);
        assert_eq!(s.unpriced, 50);
        assert_eq!(s.known_cost(), Some(25.0));
        s.record_failure(ErrorKind::Timeout);
        s.record_failure(ErrorKind::Timeout);
        assert_eq!(s.finished(), 102);
        assert_eq!(s.failed[&ErrorKind::Timeout], 2);
        assert_eq!(s.prompt_tokens, 200);
        let p50 = s.latency(0.5).as_millis();
        assert!((49..=51).contains(&p50), "{p50}");
        let p99 = s.latency(0.99).as_millis();
        assert!((98..=100).contains(&p99), "{p99}");
    }
}
