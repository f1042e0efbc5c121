//! A continuously refilled token bucket, pure maths over a clock its caller reads.
//!
//! The bucket holds a small burst and refills at `(limit - burst) / 60.5` a second, so that
//! any 60 s window admits at most the per-minute limit (burst included) and any 1 s window at
//! most `limit / 60 + burst`. The extra half second is for the network: requests admitted
//! a minute apart can arrive a little less than a minute apart, and the server counts
//! arrivals; on loopback, a refill over exactly 60 s let 6,001 of a 6,000 limit arrive
//! within one minute. Providers enforce limits over sub-minute slices, so starting
//! with a whole minute's budget would be refused; starting with a small burst is not.
//!
//! A cost larger than the burst is admitted when the bucket is full and drives it negative:
//! a debt repaid by refilling before anything else passes. Without that, one big request
//! could never go.

use std::num::NonZeroU64;
use std::time::Duration;

use tokio::time::Instant;

/// Seconds over which a minute's budget (less the burst) refills: a minute and half a
/// second of allowance for arrival jitter (see the module docs).
const REFILL_SECS: f64 = 60.5;

/// A token bucket; see the module docs.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    limit: u64,
    burst: Duration,
    capacity: f64,
    rate_per_sec: f64,
    level: f64,
    last: Instant,
}

impl TokenBucket {
    /// A bucket for `per_minute`, holding `burst` worth of it (at least one unit), full at
    /// `now`.
    pub fn per_minute(per_minute: NonZeroU64, burst: Duration, now: Instant) -> Self {
        let (capacity, rate_per_sec) = Self::shape(per_minute.get() as f64, burst);
        TokenBucket {
            limit: per_minute.get(),
            burst,
            capacity,
            rate_per_sec,
            level: capacity,
            last: now,
        }
    }

    /// Capacity and refill rate for a per-minute limit.
    fn shape(limit: f64, burst: Duration) -> (f64, f64) {
        let capacity = (limit / 60.0 * burst.as_secs_f64()).max(1.0).min(limit);
        // Leave room for the burst inside each minute, but never crawl below half the limit.
        let rate_per_sec = (limit - capacity).max(limit / 2.0) / REFILL_SECS;
        (capacity, rate_per_sec)
    }

    /// Changes the per-minute limit from `now` on (what was earned so far at the old rate
    /// is kept, up to the new capacity).
    pub fn retune(&mut self, now: Instant, per_minute: f64) {
        self.refill(now);
        let per_minute = per_minute.max(1.0);
        let (capacity, rate_per_sec) = Self::shape(per_minute, self.burst);
        self.limit = per_minute.round() as u64;
        self.capacity = capacity;
        self.rate_per_sec = rate_per_sec;
        self.level = self.level.min(capacity);
    }

    /// Lowers the level to at most `max` (what the server says is left), but never further
    /// below zero than one burst: the server's count includes requests this bucket already
    /// paid for, and a deep debt would silence the run long after the server allows it.
    pub fn clamp_level(&mut self, max: f64) {
        self.level = self.level.min(max.max(-self.capacity));
    }

    /// The per-minute limit.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// The burst it holds.
    pub fn capacity(&self) -> f64 {
        self.capacity
    }

    /// Units a second it refills.
    pub fn rate_per_sec(&self) -> f64 {
        self.rate_per_sec
    }

    fn refill(&mut self, now: Instant) {
        if now > self.last {
            if self.level < self.capacity {
                let gained = (now - self.last).as_secs_f64() * self.rate_per_sec;
                self.level = (self.level + gained).min(self.capacity);
            }
            self.last = now;
        }
    }

    /// How long until `cost` may be taken (zero: now).
    pub fn wait_for(&mut self, now: Instant, cost: u64) -> Duration {
        self.refill(now);
        let needed = (cost as f64).min(self.capacity);
        if self.level >= needed {
            Duration::ZERO
        } else {
            Duration::from_secs_f64((needed - self.level) / self.rate_per_sec)
        }
    }

    /// Takes `cost` (call after [`TokenBucket::wait_for`] said zero).
    pub fn take(&mut self, cost: u64) {
        self.level -= cost as f64;
    }

    /// Adjusts for a cost that turned out different: a positive `delta` charges more, a
    /// negative one gives back (never above the burst).
    pub fn correct(&mut self, delta: i64) {
        self.level = (self.level - delta as f64).min(self.capacity.max(self.level));
    }

    /// Empties the bucket as of `now`, so what follows ramps up at the steady rate: the
    /// first unit goes one interval after `now`, whatever debt there was before.
    pub fn empty_at(&mut self, now: Instant) {
        self.level = 0.0;
        self.last = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn nz(n: u64) -> NonZeroU64 {
        NonZeroU64::new(n).unwrap()
    }

    #[test]
    fn starts_with_a_small_burst_not_a_minute() {
        let t0 = Instant::now();
        let mut b = TokenBucket::per_minute(nz(600), Duration::from_millis(500), t0);
        let mut admitted = 0;
        while b.wait_for(t0, 1).is_zero() {
            b.take(1);
            admitted += 1;
        }
        assert_eq!(admitted, 5);
        // 595 a minute after the burst, spread over 60.5 s.
        assert!((b.rate_per_sec() - 595.0 / 60.5).abs() < 1e-9);
    }

    #[test]
    fn big_cost_passes_when_full_and_leaves_a_debt() {
        let t0 = Instant::now();
        let mut b = TokenBucket::per_minute(nz(6000), Duration::from_secs(1), t0);
        assert_eq!(b.capacity(), 100.0);
        assert!(b.wait_for(t0, 1000).is_zero());
        b.take(1000);
        let wait = b.wait_for(t0, 1);
        assert!(wait > Duration::from_secs(9), "{wait:?}");
    }

    #[test]
    fn correction_gives_back_and_charges() {
        let t0 = Instant::now();
        let mut b = TokenBucket::per_minute(nz(6000), Duration::from_secs(1), t0);
        b.take(100);
        b.correct(-40);
        assert!(b.wait_for(t0, 40).is_zero());
        b.correct(1000);
        assert!(!b.wait_for(t0, 1).is_zero());
    }

    proptest! {
        /// Whatever the arrivals and costs, admitted cost in any window of 1 s or 60 s (t = 0
        /// included) stays within `limit * w / 60 + burst` plus one largest cost (the debt
        /// rule), and within the per-minute limit over 60 s when costs fit the burst.
        #[test]
        fn no_window_exceeds_the_limit(
            limit in 10u64..100_000,
            burst_ms in 100u64..2000,
            arrivals in proptest::collection::vec((0u64..2_000, 1u64..500), 1..300),
        ) {
            let t0 = Instant::now();
            let mut b = TokenBucket::per_minute(nz(limit), Duration::from_millis(burst_ms), t0);
            let mut now_ms = 0;
            let mut admitted = Vec::new();
            let mut max_cost = 0u64;
            for (gap, cost) in arrivals {
                now_ms += gap;
                let cost = cost.min(limit);
                let now = t0 + Duration::from_millis(now_ms);
                if b.wait_for(now, cost).is_zero() {
                    b.take(cost);
                    admitted.push((now_ms, cost));
                    max_cost = max_cost.max(cost);
                }
            }
            let fits_burst = max_cost as f64 <= b.capacity();
            for window in [1_000u64, 60_000] {
                for (i, &(start, _)) in admitted.iter().enumerate() {
                    let sum: u64 = admitted[i..].iter().take_while(|(t, _)| *t < start + window).map(|(_, c)| c).sum();
                    let bound = limit as f64 * window as f64 / 60_000.0 + b.capacity()
                        + if fits_burst { 0.0 } else { max_cost as f64 };
                    prop_assert!(sum as f64 <= bound + 1e-6, "{sum} in {window} ms > {bound}");
                    if window == 60_000 && fits_burst {
                        prop_assert!(sum <= limit, "{sum} in a minute > {limit}");
                    }
                }
            }
        }
    }
}
