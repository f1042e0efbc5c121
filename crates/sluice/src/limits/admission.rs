//! The admission gate: request and token budgets plus one pause shared by every worker.
//!
//! After a 429 the whole gate pauses until the server's retry-after (or the backoff) has
//! passed; when it opens again both buckets start empty, so requests resume at the steady
//! rate instead of all waiting requests bursting out at once.

use std::num::NonZeroU64;
use std::time::Duration;

use tokio::time::Instant;

use super::TokenBucket;

/// The budgets to keep within.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Requests per minute.
    pub rpm: Option<NonZeroU64>,
    /// Tokens per minute (prompt plus reserved output, as providers count at admission).
    pub tpm: Option<NonZeroU64>,
    /// How much of a minute's budget may go at once. Half a second by default: below the
    /// one-second slices providers enforce, leaving room for network jitter.
    pub burst: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            rpm: None,
            tpm: None,
            burst: Duration::from_millis(500),
        }
    }
}

/// What the gate says to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdmitDecision {
    /// Admitted; its cost was taken.
    Now,
    /// Not before this instant.
    Wait(Instant),
    /// Never: the cost is above the whole per-minute token budget.
    Never {
        /// The token limit.
        limit: u64,
    },
}

/// Request and token buckets and the shared pause.
#[derive(Debug, Clone)]
pub struct Admission {
    requests: Option<TokenBucket>,
    tokens: Option<TokenBucket>,
    paused_until: Option<Instant>,
}

impl Admission {
    /// A gate for `limits`, opening at `now`.
    pub fn new(limits: &Limits, now: Instant) -> Self {
        Admission {
            requests: limits
                .rpm
                .map(|l| TokenBucket::per_minute(l, limits.burst, now)),
            tokens: limits
                .tpm
                .map(|l| TokenBucket::per_minute(l, limits.burst, now)),
            paused_until: None,
        }
    }

    /// Whether a token budget is set (estimates are only worth computing then).
    pub fn limits_tokens(&self) -> bool {
        self.tokens.is_some()
    }

    /// Asks to admit one request of `cost` tokens at `now`.
    pub fn try_admit(&mut self, now: Instant, cost: u64) -> AdmitDecision {
        if let Some(t) = &self.tokens
            && cost > t.limit()
        {
            return AdmitDecision::Never { limit: t.limit() };
        }
        if let Some(until) = self.paused_until {
            if now < until {
                return AdmitDecision::Wait(until);
            }
            self.paused_until = None;
            for b in [&mut self.requests, &mut self.tokens].into_iter().flatten() {
                b.empty_at(until);
            }
        }
        let wait_requests = self
            .requests
            .as_mut()
            .map_or(Duration::ZERO, |b| b.wait_for(now, 1));
        let wait_tokens = self
            .tokens
            .as_mut()
            .map_or(Duration::ZERO, |b| b.wait_for(now, cost));
        let wait = wait_requests.max(wait_tokens);
        if !wait.is_zero() {
            return AdmitDecision::Wait(now + wait);
        }
        if let Some(b) = &mut self.requests {
            b.take(1);
        }
        if let Some(b) = &mut self.tokens {
            b.take(cost);
        }
        AdmitDecision::Now
    }

    /// Corrects the token budget once the real cost is known (`actual - estimated`).
    pub fn correct_tokens(&mut self, delta: i64) {
        if let Some(b) = &mut self.tokens {
            b.correct(delta);
        }
    }

    /// Pauses admission for everyone until `until` (a later pause extends an earlier one).
    pub fn pause_until(&mut self, until: Instant) {
        self.paused_until = Some(self.paused_until.map_or(until, |p| p.max(until)));
    }

    /// The end of the current pause, if paused at `now`.
    pub fn paused_at(&self, now: Instant) -> Option<Instant> {
        self.paused_until.filter(|&p| p > now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(rpm: u64, tpm: u64) -> Limits {
        Limits {
            rpm: NonZeroU64::new(rpm),
            tpm: NonZeroU64::new(tpm),
            burst: Duration::from_secs(1),
        }
    }

    #[test]
    fn both_budgets_must_agree_and_only_then_are_charged() {
        let t0 = Instant::now();
        let mut a = Admission::new(&limits(60, 6000), t0);
        // 1 request and 100 tokens of burst.
        assert_eq!(a.try_admit(t0, 50), AdmitDecision::Now);
        let AdmitDecision::Wait(_) = a.try_admit(t0, 10) else {
            panic!("request budget is spent");
        };
        // Two seconds later, the request bucket refilled (59/60 a second); tokens too.
        assert_eq!(
            a.try_admit(t0 + Duration::from_secs(2), 10),
            AdmitDecision::Now
        );
    }

    #[test]
    fn a_request_above_the_whole_tpm_is_never_admitted() {
        let t0 = Instant::now();
        let mut a = Admission::new(&limits(0, 1000), t0);
        assert_eq!(a.try_admit(t0, 1001), AdmitDecision::Never { limit: 1000 });
        assert_eq!(a.try_admit(t0, 1000), AdmitDecision::Now);
    }

    #[test]
    fn a_pause_holds_everyone_and_resumes_without_a_burst() {
        let t0 = Instant::now();
        let mut a = Admission::new(&limits(6000, 0), t0);
        let until = t0 + Duration::from_secs(30);
        a.pause_until(until);
        a.pause_until(t0 + Duration::from_secs(5)); // an earlier end does not shorten it
        assert_eq!(
            a.try_admit(t0 + Duration::from_secs(10), 1),
            AdmitDecision::Wait(until)
        );
        // At the end of the pause the bucket is empty: the first request waits one interval.
        let AdmitDecision::Wait(at) = a.try_admit(until, 1) else {
            panic!("no burst right after a pause");
        };
        assert!(at > until && at - until < Duration::from_millis(20));
        assert_eq!(a.try_admit(at, 1), AdmitDecision::Now);
    }

    #[test]
    fn unlimited_admits_everything() {
        let t0 = Instant::now();
        let mut a = Admission::new(&Limits::default(), t0);
        for _ in 0..10_000 {
            assert_eq!(a.try_admit(t0, 1_000_000), AdmitDecision::Now);
        }
    }
}
