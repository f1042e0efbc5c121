//! Additive-increase, multiplicative-decrease control of one per-minute rate.
//!
//! - **Slow start** (an `auto` limit before its first 429): the rate doubles every second,
//!   so an unknown limit is found in seconds.
//! - **Decrease**: a 429 (or 529) multiplies the rate by 0.8 and remembers where it hit.
//! - **Increase** is additive in *time*, not per success: 5 % of the reference rate (the
//!   ceiling, else the last hit) a second below 95 % of the last hit, 0.5 % a second above
//!   it. Two jobs sharing a key get the same increase whatever their share, while the
//!   429s they meet grow with their share: that is what makes AIMD converge to a fair
//!   split instead of one job starving the other.
//! - **Ceiling**: never above the configured limit or the one the server's headers state.

use std::time::Duration;

use tokio::time::Instant;

/// The least time between two decreases.
pub const DECREASE_COOLDOWN: Duration = Duration::from_millis(200);

/// One adaptive rate, in units per minute.
#[derive(Debug, Clone, PartialEq)]
pub struct RateController {
    rate: f64,
    ceiling: Option<f64>,
    floor: f64,
    last_hit: Option<f64>,
    slow_start: bool,
    last_growth: Option<Instant>,
    last_decrease: Option<Instant>,
}

impl RateController {
    /// A fixed limit that backs off on 429s and climbs back to it.
    pub fn fixed(limit: f64) -> Self {
        RateController {
            rate: limit,
            ceiling: Some(limit),
            floor: (limit / 100.0).max(1.0),
            last_hit: None,
            slow_start: false,
            last_growth: None,
            last_decrease: None,
        }
    }

    /// An unknown limit: start at `start`, search upwards, never above `ceiling`.
    pub fn auto(start: f64, ceiling: Option<f64>) -> Self {
        let rate = ceiling.map_or(start, |c| start.min(c));
        RateController {
            rate,
            ceiling,
            floor: 1.0,
            last_hit: None,
            slow_start: true,
            last_growth: None,
            last_decrease: None,
        }
    }

    /// The rate now, per minute.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// The ceiling, if known.
    pub fn ceiling(&self) -> Option<f64> {
        self.ceiling
    }

    /// A success at `now`: grow by the time since the last growth (at most a second's worth,
    /// so a quiet spell does not turn into a jump).
    pub fn on_success(&mut self, now: Instant) {
        let dt = match self.last_growth.replace(now) {
            Some(last) => now
                .saturating_duration_since(last)
                .min(Duration::from_secs(1))
                .as_secs_f64(),
            None => return,
        };
        if self.ceiling.is_some_and(|c| self.rate >= c) {
            return;
        }
        if self.slow_start {
            self.rate *= 2f64.powf(dt);
        } else {
            let reference = self.ceiling.or(self.last_hit).unwrap_or(self.rate);
            let share = if self.last_hit.is_some_and(|hit| self.rate >= 0.95 * hit) {
                0.005
            } else {
                0.05
            };
            self.rate += share * reference * dt;
        }
        if let Some(c) = self.ceiling {
            self.rate = self.rate.min(c);
        }
    }

    /// A rate limit or overload at `now`: back off, once per [`DECREASE_COOLDOWN`] (the
    /// requests already in flight when the rate was too high all come back refused; they
    /// are one signal, not many).
    pub fn on_limited(&mut self, now: Instant) {
        if self
            .last_decrease
            .is_some_and(|t| now.saturating_duration_since(t) < DECREASE_COOLDOWN)
        {
            return;
        }
        self.last_decrease = Some(now);
        self.slow_start = false;
        self.last_hit = Some(self.rate);
        self.rate = (self.rate * 0.8).max(self.floor);
    }

    /// The server stated the limit: it becomes the ceiling (under a configured one), and
    /// an `auto` rate jumps to it.
    pub fn learn_limit(&mut self, limit: f64, configured: Option<f64>) {
        let ceiling = configured.map_or(limit, |c| c.min(limit));
        let known_before = self.ceiling == Some(ceiling);
        self.ceiling = Some(ceiling);
        if self.slow_start && !known_before {
            // No need to search for what the server says.
            self.slow_start = false;
            self.rate = ceiling;
        }
        self.rate = self.rate.min(ceiling);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(t0: Instant, s: f64) -> Instant {
        t0 + Duration::from_secs_f64(s)
    }

    #[test]
    fn backs_off_on_a_hit_and_climbs_back_to_a_fixed_limit() {
        let t0 = Instant::now();
        let mut r = RateController::fixed(600.0);
        r.on_limited(t0);
        r.on_limited(t0 + Duration::from_millis(50));
        assert_eq!(r.rate(), 480.0, "one decrease per cooldown");
        for i in 0..=100 {
            r.on_success(secs(t0, i as f64));
        }
        assert_eq!(r.rate(), 600.0, "never above the ceiling");
    }

    #[test]
    fn auto_doubles_then_probes_gently_near_the_hit() {
        let t0 = Instant::now();
        let mut r = RateController::auto(60.0, None);
        r.on_success(t0);
        r.on_success(secs(t0, 1.0));
        assert!((r.rate() - 120.0).abs() < 1e-9, "{}", r.rate());
        r.on_success(secs(t0, 2.0));
        r.on_success(secs(t0, 3.0));
        assert!((r.rate() - 480.0).abs() < 1e-9, "{}", r.rate());
        // A quiet spell counts as one second at most.
        let mut quiet = r.clone();
        quiet.on_success(secs(t0, 60.0));
        assert!((quiet.rate() - 960.0).abs() < 1e-9);
        r.on_limited(secs(t0, 3.0));
        assert!((r.rate() - 384.0).abs() < 1e-9);
        // 5 % of the hit (24/min) a second up to 95 % of it (456): three seconds.
        let mut t = 3.0;
        while r.rate() < 0.95 * 480.0 {
            t += 0.1;
            r.on_success(secs(t0, t));
        }
        assert!((t - 6.0).abs() < 0.15, "{t}");
        let before = r.rate();
        r.on_success(secs(t0, t + 1.0));
        assert!(
            (r.rate() - before - 2.4).abs() < 1e-9,
            "0.5 % of the hit a second"
        );
    }

    #[test]
    fn growth_is_the_same_for_a_slow_and_a_fast_sender() {
        let t0 = Instant::now();
        let (mut a, mut b) = (RateController::fixed(6000.0), RateController::fixed(6000.0));
        a.on_limited(t0);
        b.on_limited(t0);
        b.on_limited(secs(t0, 0.5));
        let (a0, b0) = (a.rate(), b.rate());
        // a succeeds 100 times a second, b 10 times, for a second.
        for i in 0..=100 {
            a.on_success(secs(t0, i as f64 / 100.0));
        }
        for i in 0..=10 {
            b.on_success(secs(t0, i as f64 / 10.0));
        }
        assert!(((a.rate() - a0) - (b.rate() - b0)).abs() < 1e-6);
    }

    #[test]
    fn a_stated_limit_caps_and_ends_the_search() {
        let mut r = RateController::auto(60.0, None);
        r.learn_limit(1200.0, None);
        assert_eq!(r.rate(), 1200.0);
        let mut fixed = RateController::fixed(2000.0);
        fixed.learn_limit(1000.0, Some(2000.0));
        assert_eq!((fixed.rate(), fixed.ceiling()), (1000.0, Some(1000.0)));
        fixed.learn_limit(5000.0, Some(2000.0));
        assert_eq!(
            fixed.ceiling(),
            Some(2000.0),
            "the configured limit stays the ceiling"
        );
    }
}
