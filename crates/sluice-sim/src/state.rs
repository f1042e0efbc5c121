//! The state every request handler shares.

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::config::SimConfig;
use crate::limiter::Limiter;
use crate::stats::Recorder;

/// Configuration, limiter, statistics and capacity, behind one `Arc`.
#[derive(Debug)]
pub(crate) struct SimState {
    pub config: SimConfig,
    pub limiter: Mutex<Limiter>,
    pub recorder: Recorder,
    /// Time zero for the limiter and the statistics. `tokio::time`, so paused-clock tests
    /// drive it.
    pub start: Instant,
    /// Requests served at once when a capacity is set; the rest wait here.
    pub capacity: Option<Semaphore>,
}

impl SimState {
    pub(crate) fn new(config: SimConfig) -> Self {
        SimState {
            limiter: Mutex::new(Limiter::new(&config.limits)),
            recorder: Recorder::default(),
            start: Instant::now(),
            capacity: config.max_concurrency.map(Semaphore::new),
            config,
        }
    }

    /// Time since the simulator started.
    pub(crate) fn now(&self) -> Duration {
        self.start.elapsed()
    }

    /// Changes the limits from now on; returns those in force after.
    pub(crate) fn set_limits(&self, change: crate::LimitChange) -> crate::RateLimits {
        let mut limiter = self.limiter.lock().unwrap_or_else(|e| e.into_inner());
        limiter.set_limits(self.now(), change);
        limiter.limits()
    }
}
