//! The whole per-request retry decision, as one function of the failure, the request's
//! retry state and the policy (the clock and the random source are passed in, so it is
//! deterministic under test). What a refusal means for everyone else (a shared pause, a
//! lower rate, the retry budget) is the engine's settle stage, not this.

use std::fmt;
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

use super::{RetryPolicy, RetryState};

/// What failed, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Failure {
    /// A 429 rate limit (not a quota): waiting fixes it, so it does not count against
    /// [`RetryPolicy::max_attempts`].
    pub rate_limited: bool,
    /// The delay the server asked for, if it asked.
    pub server_delay: Option<Duration>,
}

/// Why a request is not tried again: data, so callers and tests match on it instead of
/// reading a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum GiveUp {
    /// Every attempt [`RetryPolicy::max_attempts`] allows was made.
    Attempts {
        /// Attempts made.
        attempts: u32,
    },
    /// Refused as rate-limited for [`RetryPolicy::max_rate_limited_wait`] or longer.
    RateLimitedFor {
        /// How long the refusals went on.
        waited: Duration,
    },
    /// The server asked to wait longer than [`RetryPolicy::max_retry_after`].
    AskedTooLong {
        /// What the server asked.
        asked: Duration,
    },
}

impl GiveUp {
    /// A stable name for records and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            GiveUp::Attempts { .. } => "attempts_exhausted",
            GiveUp::RateLimitedFor { .. } => "rate_limited_too_long",
            GiveUp::AskedTooLong { .. } => "retry_after_too_long",
        }
    }
}

impl fmt::Display for GiveUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GiveUp::Attempts { attempts } => write!(f, "gave up after {attempts} attempts"),
            GiveUp::RateLimitedFor { waited } => write!(
                f,
                "still refused as rate-limited after {:.0} s of retries",
                waited.as_secs_f64()
            ),
            GiveUp::AskedTooLong { asked } => write!(
                f,
                "the server asked to wait {:.1} s, longer than the retry policy allows",
                asked.as_secs_f64()
            ),
        }
    }
}

/// What the policy says about a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Try again after at least `delay` (backoff with jitter, or the server's delay if
    /// longer).
    Retry {
        /// The least wait before the next attempt.
        delay: Duration,
    },
    /// Do not try again.
    GiveUp(GiveUp),
}

/// Decides whether attempt number `attempts` that failed with `failure` goes again, and
/// after how long, updating the request's `state`. 429s are written off only after
/// refusals for `max_rate_limited_wait`; other failures after `max_attempts`; any failure
/// whose server asks for more than `max_retry_after`.
pub fn decide(
    policy: &RetryPolicy,
    state: &mut RetryState,
    failure: Failure,
    attempts: u32,
    now: Instant,
    rng: &mut impl Rng,
) -> Decision {
    if failure.rate_limited {
        let since = *state.limited_since.get_or_insert(now);
        let waited = now.saturating_duration_since(since);
        if waited >= policy.max_rate_limited_wait {
            return Decision::GiveUp(GiveUp::RateLimitedFor { waited });
        }
    } else {
        state.limited_since = None;
        state.errors += 1;
        if state.errors >= policy.max_attempts.get() {
            return Decision::GiveUp(GiveUp::Attempts { attempts });
        }
    }
    if let Some(asked) = failure.server_delay
        && asked > policy.max_retry_after
    {
        return Decision::GiveUp(GiveUp::AskedTooLong { asked });
    }
    let jittered = policy.backoff.delay(attempts, rng);
    Decision::Retry {
        delay: jittered.max(failure.server_delay.unwrap_or(Duration::ZERO)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;
    use std::num::NonZeroU32;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: NonZeroU32::new(3).unwrap(),
            max_rate_limited_wait: Duration::from_secs(60),
            ..RetryPolicy::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn errors_count_against_the_attempts_and_429s_against_the_time() {
        let (p, mut rng) = (policy(), SmallRng::seed_from_u64(1));
        let mut state = RetryState::default();
        let error = Failure::default();
        let now = Instant::now();
        assert!(matches!(
            decide(&p, &mut state, error, 1, now, &mut rng),
            Decision::Retry { .. }
        ));
        assert!(matches!(
            decide(&p, &mut state, error, 2, now, &mut rng),
            Decision::Retry { .. }
        ));
        assert_eq!(
            decide(&p, &mut state, error, 3, now, &mut rng),
            Decision::GiveUp(GiveUp::Attempts { attempts: 3 })
        );
        // 429s: any number within the wait, then written off.
        let limited = Failure {
            rate_limited: true,
            server_delay: None,
        };
        let mut state = RetryState::default();
        for n in 1..20 {
            assert!(matches!(
                decide(&p, &mut state, limited, n, now, &mut rng),
                Decision::Retry { .. }
            ));
        }
        let later = now + Duration::from_secs(61);
        assert!(matches!(
            decide(&p, &mut state, limited, 20, later, &mut rng),
            Decision::GiveUp(GiveUp::RateLimitedFor { waited }) if waited == Duration::from_secs(61)
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn the_servers_delay_is_a_floor_and_too_long_a_delay_gives_up() {
        let (p, mut rng) = (policy(), SmallRng::seed_from_u64(2));
        let now = Instant::now();
        let asked = |s| Failure {
            rate_limited: true,
            server_delay: Some(Duration::from_secs(s)),
        };
        match decide(&p, &mut RetryState::default(), asked(30), 1, now, &mut rng) {
            Decision::Retry { delay } => assert!(delay >= Duration::from_secs(30)),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            decide(&p, &mut RetryState::default(), asked(300), 1, now, &mut rng),
            Decision::GiveUp(GiveUp::AskedTooLong {
                asked: Duration::from_secs(300)
            })
        );
    }
}
