//! A sliding-window limiter, for providers that count over fixed windows (Azure checks
//! over 1 s and 10 s): the cost admitted in the last 1 s, 10 s and 60 s may not exceed
//! the per-minute limit scaled to each window. Unlike the token bucket it has no burst: at
//! t = 0 only one second's worth passes.
//!
//! It keeps a log of the last minute's admissions (`(time, cost)`), with a cursor and a
//! running sum per window, so each check is amortized constant time. A cost larger than a
//! window's share passes only when that window is empty; otherwise it could never pass.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// The windows checked, each allowed `limit × window / 60`.
const WINDOWS: [Duration; 3] = [
    Duration::from_secs(1),
    Duration::from_secs(10),
    Duration::from_secs(60),
];

/// See the module docs.
#[derive(Debug, Clone)]
pub struct SlidingWindow {
    per_minute: f64,
    log: VecDeque<(Instant, f64)>,
    /// Per window: index in `log` of the first entry inside it, and the sum from there.
    cursors: [(usize, f64); 3],
}

impl SlidingWindow {
    /// A limiter for `per_minute`.
    pub fn per_minute(per_minute: f64) -> Self {
        SlidingWindow {
            per_minute: per_minute.max(1.0),
            log: VecDeque::new(),
            cursors: [(0, 0.0); 3],
        }
    }

    /// The per-minute limit.
    pub fn limit(&self) -> u64 {
        self.per_minute.round() as u64
    }

    fn cap(&self, w: usize) -> f64 {
        self.per_minute * WINDOWS[w].as_secs_f64() / 60.0
    }

    /// Moves each window's cursor past entries that have left it at `now`, and drops
    /// entries older than the longest window.
    fn expire(&mut self, now: Instant) {
        for (w, window) in WINDOWS.iter().enumerate() {
            let (mut i, mut sum) = self.cursors[w];
            while let Some(&(t, cost)) = self.log.get(i) {
                if now.saturating_duration_since(t) < *window {
                    break;
                }
                sum -= cost;
                i += 1;
            }
            self.cursors[w] = (i, sum);
        }
        let drop = self.cursors[WINDOWS.len() - 1].0;
        if drop > 0 {
            self.log.drain(..drop);
            for c in &mut self.cursors {
                c.0 -= drop;
            }
        }
    }

    /// How long until `cost` may be taken (zero: now).
    pub fn wait_for(&mut self, now: Instant, cost: u64) -> Duration {
        self.expire(now);
        let mut wait = Duration::ZERO;
        for (w, window) in WINDOWS.iter().enumerate() {
            let cap = self.cap(w);
            let (start, sum) = self.cursors[w];
            let need = (cost as f64).min(cap);
            if sum + need <= cap + 1e-9 || sum <= 0.0 {
                continue;
            }
            // Walk forward until enough of this window has expired.
            let mut remaining = sum;
            for &(t, c) in self.log.iter().skip(start) {
                remaining -= c;
                if remaining + need <= cap + 1e-9 || remaining <= 1e-9 {
                    wait = wait.max((t + *window).saturating_duration_since(now));
                    break;
                }
            }
        }
        wait
    }

    /// Takes `cost` at `now` (after [`SlidingWindow::wait_for`] said zero).
    pub fn take(&mut self, now: Instant, cost: u64) {
        self.log.push_back((now, cost as f64));
        for c in &mut self.cursors {
            c.1 += cost as f64;
        }
    }

    /// Adjusts the last admission's cost by `delta` (the real cost turned out different).
    pub fn correct(&mut self, delta: i64) {
        let len = self.log.len();
        if let Some((_, cost)) = self.log.back_mut() {
            let new = (*cost + delta as f64).max(0.0);
            let change = new - *cost;
            *cost = new;
            for c in &mut self.cursors {
                if c.0 < len {
                    c.1 += change;
                }
            }
        }
    }

    /// Changes the per-minute limit.
    pub fn retune(&mut self, per_minute: f64) {
        self.per_minute = per_minute.max(1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn one_seconds_worth_at_t0_then_paced() {
        let t0 = Instant::now();
        let mut w = SlidingWindow::per_minute(600.0);
        let mut n = 0;
        while w.wait_for(t0, 1).is_zero() {
            w.take(t0, 1);
            n += 1;
        }
        assert_eq!(n, 10, "a second's worth, no burst");
        assert_eq!(w.wait_for(t0, 1), Duration::from_secs(1));
    }

    proptest! {
        /// No 1 s, 10 s or 60 s window ever holds more than its share, t = 0 included,
        /// whatever the arrivals (costs within a one-second share).
        #[test]
        fn no_window_exceeds_its_share(
            limit in 60u64..100_000,
            arrivals in proptest::collection::vec((0u64..1_500, 1u64..200), 1..300),
        ) {
            let t0 = Instant::now();
            let mut w = SlidingWindow::per_minute(limit as f64);
            let mut now_ms = 0;
            let mut admitted = Vec::new();
            for (gap, cost) in arrivals {
                now_ms += gap;
                let cost = cost.min(limit / 60).max(1);
                let now = t0 + Duration::from_millis(now_ms);
                if w.wait_for(now, cost).is_zero() {
                    w.take(now, cost);
                    admitted.push((now_ms, cost));
                }
            }
            for window in WINDOWS {
                let ms = window.as_millis() as u64;
                let cap = limit as f64 * ms as f64 / 60_000.0;
                for (i, &(start, _)) in admitted.iter().enumerate() {
                    let sum: u64 = admitted[i..].iter().take_while(|(t, _)| *t < start + ms).map(|(_, c)| c).sum();
                    prop_assert!(sum as f64 <= cap + 1e-6, "{sum} in {ms} ms > {cap}");
                }
            }
        }

        /// A request that waited the time it was told is then admitted.
        #[test]
        fn waiting_the_answer_is_enough(limit in 60u64..10_000, n in 1usize..200) {
            let t0 = Instant::now();
            let mut w = SlidingWindow::per_minute(limit as f64);
            let mut now = t0;
            for _ in 0..n {
                let wait = w.wait_for(now, 1);
                now += wait;
                prop_assert!(w.wait_for(now, 1).is_zero());
                w.take(now, 1);
            }
        }
    }
}
