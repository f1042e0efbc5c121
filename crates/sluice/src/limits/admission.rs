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

    /// Drives the gate the way the scheduler does, on tokio's paused clock: wait until
    /// the instant it names, ask again.
    async fn admit_all(gate: &mut Admission, n: usize, cost: u64) -> Vec<Instant> {
        let mut times = Vec::with_capacity(n);
        while times.len() < n {
            match gate.try_admit(Instant::now(), cost) {
                AdmitDecision::Now => times.push(Instant::now()),
                AdmitDecision::Wait(at) => tokio::time::sleep_until(at).await,
                AdmitDecision::Never { .. } => panic!("never"),
            }
        }
        times
    }

    #[tokio::test(start_paused = true)]
    async fn paced_at_the_limit_on_a_paused_clock() {
        let t0 = Instant::now();
        let mut gate = Admission::new(
            &Limits {
                rpm: NonZeroU64::new(600),
                burst: Duration::from_millis(500),
                ..Limits::default()
            },
            t0,
        );
        let times = admit_all(&mut gate, 105, 0).await;
        // 5 at once (half a second of 600 rpm), then 595 a minute.
        assert!(times[..5].iter().all(|t| *t == t0));
        let expected = Duration::from_secs_f64(100.0 * 60.0 / 595.0);
        let took = times[104] - t0;
        assert!(
            took.abs_diff(expected) < Duration::from_millis(20),
            "{took:?} vs {expected:?}"
        );
        // Never two admissions closer than the interval after the burst.
        let interval = Duration::from_secs_f64(60.0 / 595.0);
        for w in times[5..].windows(2) {
            assert!(
                w[1] - w[0] >= interval - Duration::from_millis(1),
                "{:?}",
                w[1] - w[0]
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_30_second_pause_releases_no_herd_on_a_paused_clock() {
        let t0 = Instant::now();
        let limits = Limits {
            rpm: NonZeroU64::new(6000),
            tpm: NonZeroU64::new(600_000),
            burst: Duration::from_millis(500),
        };
        let mut gate = Admission::new(&limits, t0);
        admit_all(&mut gate, 50, 10).await;
        let until = Instant::now() + Duration::from_secs(30);
        gate.pause_until(until);
        let times = admit_all(&mut gate, 300, 10).await;
        assert!(times[0] > until);
        // In any second after the pause: at most 100 (6000/60), with no burst on top.
        for (i, t) in times.iter().enumerate() {
            let in_window = times[i..]
                .iter()
                .take_while(|u| **u - *t < Duration::from_secs(1))
                .count();
            assert!(
                in_window <= 100,
                "{in_window} in the second after {:?}",
                *t - until
            );
        }
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
