//! Admission against rate limits: token buckets for requests and tokens, the shared pause
//! every worker respects after a 429, adaptive rates (AIMD), and the server's headers.

mod adaptive;
mod adaptive_pacer;
mod admission;
mod bucket;
mod concurrency;
mod evidence;
mod headers;
mod pacer;
mod window;

use std::fmt::Debug;
use std::time::Duration;

use tokio::time::Instant;

pub use adaptive::RateController;
pub use adaptive_pacer::AdaptivePacer;
pub use admission::{Admission, AdmitDecision, Budget, Limits, Refusal};
pub use bucket::TokenBucket;
pub use concurrency::ConcurrencyController;
pub use evidence::{Evidence, Judgement, Stated};
pub use headers::{BudgetHeaders, RateHeaders, parse_go_duration, until_rfc3339};
pub use pacer::Pacer;
pub use window::SlidingWindow;

/// Which admission algorithm a budget uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Algorithm {
    /// A continuously refilled bucket with a small burst (the default; how OpenAI counts).
    #[default]
    TokenBucket,
    /// Fixed shares of 1 s, 10 s and 60 s windows, no burst (how Azure counts).
    SlidingWindow,
}

/// What admission needs of a limiter; [`TokenBucket`] and [`SlidingWindow`] both are one.
pub trait RateLimiter: Debug + Send + Sync {
    /// The per-minute limit in force.
    fn limit(&self) -> u64;
    /// How long until `cost` may be taken at `now` (zero: now).
    fn wait_for(&mut self, now: Instant, cost: u64) -> Duration;
    /// Takes `cost` at `now`.
    fn take(&mut self, now: Instant, cost: u64);
    /// The last cost turned out `delta` more (or less, if negative).
    fn correct(&mut self, delta: i64);
    /// Admission resumes at `now` after a pause: restart without a burst.
    fn restart_at(&mut self, now: Instant);
    /// The per-minute limit changes from `now` on.
    fn retune(&mut self, now: Instant, per_minute: f64);
    /// The server says at most `max` remains.
    fn cap_remaining(&mut self, max: f64);
}

impl RateLimiter for TokenBucket {
    fn limit(&self) -> u64 {
        TokenBucket::limit(self)
    }
    fn wait_for(&mut self, now: Instant, cost: u64) -> Duration {
        TokenBucket::wait_for(self, now, cost)
    }
    fn take(&mut self, _now: Instant, cost: u64) {
        TokenBucket::take(self, cost)
    }
    fn correct(&mut self, delta: i64) {
        TokenBucket::correct(self, delta)
    }
    fn restart_at(&mut self, now: Instant) {
        self.empty_at(now)
    }
    fn retune(&mut self, now: Instant, per_minute: f64) {
        TokenBucket::retune(self, now, per_minute)
    }
    fn cap_remaining(&mut self, max: f64) {
        self.clamp_level(max)
    }
}

impl RateLimiter for SlidingWindow {
    fn limit(&self) -> u64 {
        SlidingWindow::limit(self)
    }
    fn wait_for(&mut self, now: Instant, cost: u64) -> Duration {
        SlidingWindow::wait_for(self, now, cost)
    }
    fn take(&mut self, now: Instant, cost: u64) {
        SlidingWindow::take(self, now, cost)
    }
    fn correct(&mut self, delta: i64) {
        SlidingWindow::correct(self, delta)
    }
    /// A window has no burst to empty: after a pause it admits one second's share.
    fn restart_at(&mut self, _now: Instant) {}
    fn retune(&mut self, _now: Instant, per_minute: f64) {
        SlidingWindow::retune(self, per_minute)
    }
    /// The windows already hold admission to the limit's shares; the server's remaining
    /// budget is left to the rate controller.
    fn cap_remaining(&mut self, _max: f64) {}
}

/// A limiter of `algorithm` for `per_minute`, starting at `now`.
pub fn limiter(
    algorithm: Algorithm,
    per_minute: std::num::NonZeroU64,
    burst: Duration,
    now: Instant,
) -> Box<dyn RateLimiter> {
    match algorithm {
        Algorithm::TokenBucket => Box::new(TokenBucket::per_minute(per_minute, burst, now)),
        Algorithm::SlidingWindow => Box::new(SlidingWindow::per_minute(per_minute.get() as f64)),
    }
}
