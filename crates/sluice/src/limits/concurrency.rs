//! Adaptive concurrency for servers that queue instead of refusing (vLLM, llama.cpp,
//! Ollama): a gradient controller in the style of Netflix's `concurrency-limits`.
//!
//! It keeps the least latency seen (the no-load latency) and, every batch of samples,
//! compares it with the batch's median: while latency stays near the minimum the limit
//! grows by a fifth a batch, and once requests start to queue the ratio falls below one
//! and pulls the limit down in proportion, plus a queue allowance of √limit. The new limit is smoothed so
//! one noisy batch cannot swing it.

use std::time::Duration;

/// Latency above the minimum that still counts as unloaded (jitter, small batches).
const TOLERANCE: f64 = 1.25;
/// Weight of the newest estimate in the smoothed limit.
const SMOOTHING: f64 = 0.2;

/// See the module docs.
#[derive(Debug, Clone)]
pub struct ConcurrencyController {
    limit: f64,
    min: usize,
    max: usize,
    min_latency: Option<Duration>,
    samples: Vec<Duration>,
    batches: u64,
}

impl ConcurrencyController {
    /// Starts at `initial`, never outside `min..=max`.
    pub fn new(initial: usize, min: usize, max: usize) -> Self {
        let min = min.max(1);
        let max = max.max(min);
        ConcurrencyController {
            limit: initial.clamp(min, max) as f64,
            min,
            max,
            min_latency: None,
            samples: Vec::new(),
            batches: 0,
        }
    }

    /// The current limit.
    pub fn limit(&self) -> usize {
        self.limit.round() as usize
    }

    /// Records one successful request's latency; returns the new limit when it changed.
    pub fn on_sample(&mut self, latency: Duration) -> Option<usize> {
        self.samples.push(latency);
        if self.samples.len() < self.limit().max(16) {
            return None;
        }
        self.samples.sort_unstable();
        let median = self.samples[self.samples.len() / 2];
        let least = self.samples[0];
        self.samples.clear();
        self.batches += 1;
        let min_latency = self.min_latency.map_or(least, |m| m.min(least));
        self.min_latency = Some(min_latency);
        let gradient = (TOLERANCE * min_latency.as_secs_f64() / median.as_secs_f64().max(1e-9))
            .clamp(0.5, 1.0);
        // No queueing at all: search upwards fast (the smoothing makes it +20 % a batch);
        // otherwise follow the gradient, with a queue allowance of √limit.
        let estimate = if gradient >= 1.0 {
            self.limit * 2.0
        } else {
            self.limit * gradient + self.limit.sqrt()
        };
        let before = self.limit();
        self.limit = ((1.0 - SMOOTHING) * self.limit + SMOOTHING * estimate)
            .clamp(self.min as f64, self.max as f64);
        (self.limit() != before).then_some(self.limit())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server that serves `capacity` at once in `base` and queues the rest.
    fn latency(base: Duration, capacity: usize, in_flight: usize) -> Duration {
        base.mul_f64((in_flight as f64 / capacity as f64).max(1.0))
    }

    #[test]
    fn settles_near_a_queueing_servers_capacity() {
        let base = Duration::from_millis(20);
        let mut c = ConcurrencyController::new(4, 1, 1000);
        for _ in 0..400 {
            let l = c.limit();
            for _ in 0..l.max(16) {
                c.on_sample(latency(base, 32, l));
            }
        }
        let l = c.limit();
        assert!((32..=56).contains(&l), "settled at {l}");
    }

    #[test]
    fn backs_off_when_latency_climbs() {
        let mut c = ConcurrencyController::new(100, 1, 1000);
        for _ in 0..16 {
            c.on_sample(Duration::from_millis(10));
        }
        let before = c.limit();
        for _ in 0..10 {
            for _ in 0..c.limit().max(16) {
                c.on_sample(Duration::from_millis(60));
            }
        }
        assert!(c.limit() < before / 2, "{} from {before}", c.limit());
    }
}
