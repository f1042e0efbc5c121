//! [`AdaptivePacer`]: a rate that rises while calls succeed and falls when they are
//! refused, around any async operation; the engine's own AIMD controller
//! ([`super::RateController`]) driving a token bucket.

use std::num::NonZeroU64;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::{RateController, TokenBucket};

/// Paces calls at a rate it adapts: call [`AdaptivePacer::acquire`] before each call,
/// then [`AdaptivePacer::on_success`] or [`AdaptivePacer::on_rate_limited`] after it. A
/// refusal lowers the rate by a fifth (once per episode: a burst of refusals is one
/// signal); successes raise it a little every second, never above the ceiling.
#[derive(Debug)]
pub struct AdaptivePacer {
    state: Mutex<State>,
    /// Serves waiters in order.
    turn: tokio::sync::Mutex<()>,
}

#[derive(Debug)]
struct State {
    controller: RateController,
    bucket: TokenBucket,
}

impl AdaptivePacer {
    /// Starts at `start` a minute and searches upwards (doubling each second until the
    /// first refusal), never above `ceiling` a minute if given.
    pub fn new(start: NonZeroU64, ceiling: Option<NonZeroU64>) -> Self {
        let controller = RateController::auto(start.get() as f64, ceiling.map(|c| c.get() as f64));
        let bucket = TokenBucket::per_minute(start, Duration::from_millis(200), Instant::now());
        AdaptivePacer {
            state: Mutex::new(State { controller, bucket }),
            turn: tokio::sync::Mutex::new(()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The rate now, per minute.
    pub fn rate(&self) -> f64 {
        self.state().controller.rate()
    }

    /// Waits for a slot at the current rate and takes it; returns the instant it went,
    /// for [`AdaptivePacer::on_rate_limited`].
    pub async fn acquire(&self) -> Instant {
        let _turn = self.turn.lock().await;
        loop {
            let wait = {
                let mut s = self.state();
                let wait = s.bucket.wait_for(Instant::now(), 1);
                if wait.is_zero() {
                    s.bucket.take(1);
                }
                wait
            };
            if wait.is_zero() {
                return Instant::now();
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// A call succeeded: the rate may grow.
    pub fn on_success(&self) {
        let now = Instant::now();
        let mut s = self.state();
        s.controller.on_success(now);
        let rate = s.controller.rate();
        s.bucket.retune(now, rate);
    }

    /// A call sent at `sent` was refused as rate-limited: the rate falls, once per episode.
    /// Returns whether it fell.
    pub fn on_rate_limited(&self, sent: Instant) -> bool {
        let now = Instant::now();
        let mut s = self.state();
        let fell = s.controller.on_limited(now, sent);
        let rate = s.controller.rate();
        s.bucket.retune(now, rate);
        fell
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_rate_rises_on_success_and_falls_on_refusal() {
        let pacer = AdaptivePacer::new(NonZeroU64::new(60).unwrap(), NonZeroU64::new(6000));
        let start = pacer.rate();
        for _ in 0..20 {
            pacer.acquire().await;
            pacer.on_success();
        }
        let risen = pacer.rate();
        assert!(risen > start, "{start} -> {risen}");
        let sent = pacer.acquire().await;
        tokio::time::advance(Duration::from_millis(10)).await;
        assert!(pacer.on_rate_limited(sent));
        assert!(pacer.rate() < risen);
        // The same episode: a second refusal of a request sent before it does not count.
        assert!(!pacer.on_rate_limited(sent));
    }
}
