//! Additive-increase, multiplicative-decrease control of one per-minute rate.
//!
//! - **Slow start** (an `auto` limit before its first 429): the rate doubles every second,
//!   so an unknown limit is found in seconds.
//! - **Decrease**: a congestion episode multiplies the rate by 0.8 and remembers the rate
//!   it was at. One episode is one decrease: refusals of requests sent before the decrease,
//!   or before any success since, are the same signal (a burst of 429s, or a fixed window
//!   that stays shut until its minute turns).
//! - **Recovery and probing** are additive in *time*, not per success: 5 % of the
//!   reference rate (the ceiling, else the rate of the last hit) a second below 95 % of
//!   the last hit — so a run is back at 90 % two seconds after a decrease — and 0.5 % a
//!   second above it. Because one episode is one decrease, widely spaced episodes cannot
//!   ratchet the rate down. (A multiplicative return to each job's own last rate would be
//!   quicker still, but keeps two jobs on one key at whatever ratio they met the limit:
//!   only additive growth converges to a fair split.) Two jobs sharing a key get the same increase whatever their
//!   share, while the 429s they meet grow with their share: that is what makes AIMD
//!   converge to a fair split instead of one job starving the other.
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
    /// Whether a request succeeded since the last decrease (a new episode needs one).
    success_since_decrease: bool,
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
            success_since_decrease: true,
        }
    }

    /// A limit learned from the traffic itself (no limit was given and the server refused):
    /// start at the rate that was being sent, never above `ceiling` if one is known.
    pub fn learned(rate: f64, ceiling: Option<f64>) -> Self {
        let mut r = RateController::auto(rate.max(1.0), ceiling);
        r.slow_start = false;
        r
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
            success_since_decrease: true,
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
        self.success_since_decrease = true;
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

    /// A success at `now` while the rate is held (a probe compares the answers at one
    /// lower rate with those before it, so the rate must stay put until it decides).
    pub fn on_success_held(&mut self, now: Instant) {
        self.success_since_decrease = true;
        self.last_growth = Some(now);
    }

    /// Congestion at `now`, met by a request sent at `sent`: back off once per episode.
    /// A refusal of a request sent before the last decrease, or before any success since
    /// it, belongs to that decrease's episode (the requests in flight when the rate was too
    /// high all come back refused; they are one signal, not many); so does one within
    /// `DECREASE_COOLDOWN` (200 ms). Returns whether the rate went down.
    pub fn on_limited(&mut self, now: Instant, sent: Instant) -> bool {
        if let Some(last) = self.last_decrease
            && (now.saturating_duration_since(last) < DECREASE_COOLDOWN
                || sent < last
                || !self.success_since_decrease)
        {
            return false;
        }
        self.last_decrease = Some(now);
        self.success_since_decrease = false;
        if self.slow_start {
            // The rate doubled every second: the limit lies between half of it (a second
            // ago, not refused) and it. Start from the half.
            self.slow_start = false;
            self.rate = (self.rate / 2.0).max(self.floor);
        }
        self.last_hit = Some(self.rate);
        self.rate = (self.rate * 0.8).max(self.floor);
        true
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
        assert!(r.on_limited(t0, t0));
        assert!(!r.on_limited(t0 + Duration::from_millis(50), t0));
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
        // Refused in slow start at 480: the limit lies between 240 (a second ago) and 480.
        r.on_limited(secs(t0, 3.0), secs(t0, 3.0));
        assert!((r.rate() - 192.0).abs() < 1e-9, "{}", r.rate());
        // 5 % of 240 a second back up to 95 % of it: within 5 s.
        let mut t = 3.0;
        while r.rate() < 0.95 * 240.0 {
            t += 0.1;
            r.on_success(secs(t0, t));
        }
        assert!(t - 3.0 <= 5.0, "{t}");
        while r.rate() < 0.99 * 240.0 {
            t += 0.1;
            r.on_success(secs(t0, t));
        }
        let before = r.rate();
        r.on_success(secs(t0, t + 1.0));
        assert!(
            (r.rate() - before - 1.2).abs() < 1e-9,
            "0.5 % of the hit a second above it"
        );
    }

    #[test]
    fn growth_is_the_same_for_a_slow_and_a_fast_sender() {
        let t0 = Instant::now();
        let (mut a, mut b) = (RateController::fixed(6000.0), RateController::fixed(6000.0));
        for r in [&mut a, &mut b] {
            r.on_success(t0);
            r.on_limited(t0, t0);
            // Recovered and probing after eight seconds of successes.
            for i in 1..=80 {
                r.on_success(secs(t0, i as f64 * 0.1));
            }
        }
        let (a0, b0) = (a.rate(), b.rate());
        let start = 8.0;
        // a succeeds 100 times a second, b 10 times, for a second.
        for i in 1..=100 {
            a.on_success(secs(t0, start + i as f64 / 100.0));
        }
        for i in 1..=10 {
            b.on_success(secs(t0, start + i as f64 / 10.0));
        }
        assert!(a0 == b0 && a.rate() > a0);
        assert!(((a.rate() - a0) - (b.rate() - b0)).abs() < 1e-6);
    }

    #[test]
    fn one_episode_is_one_decrease_and_spaced_episodes_do_not_ratchet_down() {
        let t0 = Instant::now();
        let mut r = RateController::fixed(600.0);
        r.on_success(t0);
        assert!(r.on_limited(secs(t0, 1.0), secs(t0, 0.9)));
        // Requests sent before the decrease come back refused later: same episode.
        assert!(!r.on_limited(secs(t0, 2.0), secs(t0, 0.95)));
        // Sent after it, but no success since: still the same episode (a shut window).
        assert!(!r.on_limited(secs(t0, 3.0), secs(t0, 2.5)));
        assert_eq!(r.rate(), 480.0);
        // Ten episodes a minute apart, each after a minute of successes: no collapse.
        let mut t = 3.0;
        for _ in 0..10 {
            for _ in 0..600 {
                t += 0.1;
                r.on_success(secs(t0, t));
            }
            assert!(r.on_limited(secs(t0, t), secs(t0, t)));
        }
        assert!(r.rate() >= 0.8 * 0.9 * 0.95 * 600.0, "{}", r.rate());
    }

    #[test]
    fn after_a_decrease_the_rate_is_back_at_90_percent_within_seconds() {
        let t0 = Instant::now();
        let mut r = RateController::fixed(600.0);
        r.on_success(t0);
        r.on_limited(t0, t0);
        let mut t = 0.0;
        while r.rate() < 0.9 * 600.0 {
            t += 0.05;
            r.on_success(secs(t0, t));
        }
        assert!(t < 5.0, "{t} s");
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
