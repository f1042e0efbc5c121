//! Retrying: classification, backoff with jitter, the server's retry-after, and a budget.

mod around;
mod backoff;
mod budget;
mod classify;
mod decide;
mod retry_after;

use std::num::NonZeroU32;
use std::time::Duration;

pub use around::with_backoff;
pub use backoff::Backoff;
pub use budget::RetryBudget;
pub use classify::{Verdict, classify, is_overload};
pub use decide::{Decision, Failure, GiveUp, decide};
pub use retry_after::{retry_after, retry_after_in_text, should_retry};
pub(crate) use retry_after::{retry_after_in, should_retry_in};

/// How a request is retried.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: NonZeroU32,
    /// Delay between attempts.
    pub backoff: Backoff,
    /// The longest server-requested wait honoured; above it the request fails as rate
    /// limited (the OpenAI SDK gives up above 120 s too).
    pub max_retry_after: Duration,
    /// Retries allowed per original request (0.2: retries add at most 20 % to the load).
    pub budget_ratio: f64,
    /// Retries allowed a second whatever the traffic.
    pub budget_min_per_sec: f64,
    /// How long a request may keep being refused as rate-limited (429) before it is
    /// written off: 429s do not count against `max_attempts`, since waiting fixes them.
    pub max_rate_limited_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: NonZeroU32::new(8).expect("8 is not zero"),
            backoff: Backoff::default(),
            max_retry_after: Duration::from_secs(120),
            budget_ratio: 0.2,
            budget_min_per_sec: 10.0,
            max_rate_limited_wait: Duration::from_secs(15 * 60),
        }
    }
}

/// Where one request stands with its retries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetryState {
    /// Attempts that failed with an error worth retrying (not a 429), counted against
    /// [`RetryPolicy::max_attempts`].
    pub errors: u32,
    /// When the current run of 429s for this request began (reset by any other answer).
    pub limited_since: Option<tokio::time::Instant>,
}
