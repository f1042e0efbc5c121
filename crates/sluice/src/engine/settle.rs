//! The settle stage for a failed attempt worth another: whether it goes again and when,
//! and what a refusal means for everyone (a shared pause, a lower rate).

use std::time::Duration;

use tokio::time::Instant;

use super::attempt::Retryable;
use super::{Charge, Inner};
use crate::events::Event;
use crate::limits::Refusal;
use crate::retry::RetryState;

impl Inner {
    /// Decides when a failed attempt goes again, or that it does not. A 429 is weighed by
    /// the gate: congestion pauses everyone (for what the server asked, or a pause that
    /// grows with consecutive refusals when it asked nothing) and lowers the rate once per
    /// episode; an isolated refusal makes only this request wait. Other failures draw on the
    /// retry budget. 429s do not count against the attempts allowed; a request is written
    /// off as rate-limited only after refusals for `max_rate_limited_wait`, or when the
    /// server asks for more than `max_retry_after`.
    pub(crate) fn plan_retry(
        &self,
        charge: Charge,
        custom_id: &str,
        state: &mut RetryState,
        attempts: u32,
        sent: Instant,
        r: &mut Retryable,
    ) -> Option<Instant> {
        let now = Instant::now();
        let policy = &self.retry;
        let error = &mut r.error;
        if r.rate_limited {
            self.stats().rate_limited += 1;
        }
        // A 429 or a 529 (overloaded) may mean the rate is too high for the server now.
        let refusal = (r.rate_limited || error.status == Some(529))
            .then(|| self.gate().admissions[charge.gate].on_limited(now, sent, r.headroom));
        if r.rate_limited {
            let since = *state.limited_since.get_or_insert(now);
            let refused_for = now.saturating_duration_since(since);
            if refused_for >= policy.max_rate_limited_wait {
                error.message = format!(
                    "{}; still refused as rate-limited after {:.0} s of retries",
                    error.message,
                    refused_for.as_secs_f64()
                );
                return None;
            }
        } else {
            state.limited_since = None;
            state.errors += 1;
            if state.errors >= policy.max_attempts.get() {
                error.message = format!("{}; gave up after {attempts} attempts", error.message);
                return None;
            }
        }
        if let Some(asked) = r.server_delay
            && asked > policy.max_retry_after
        {
            error.message = format!(
                "{}; the server asked to wait {:.1} s, above the {:.0} s this run accepts",
                error.message,
                asked.as_secs_f64(),
                policy.max_retry_after.as_secs_f64()
            );
            return None;
        }
        let mut gate = self.gate();
        let jittered = policy.backoff.delay(attempts, &mut gate.rng);
        let mut delay = jittered.max(r.server_delay.unwrap_or(Duration::ZERO));
        match refusal {
            Some(Refusal::Congestion { .. }) => {
                // Everyone waits what the server asked or, when it said nothing, a pause
                // that doubles with each refusal in a row; this request alone also waits
                // its own, growing, backoff.
                gate.consecutive_limited += 1;
                let pause = r
                    .server_delay
                    .unwrap_or_else(|| policy.backoff.ceiling(gate.consecutive_limited));
                gate.admissions[charge.gate].pause_until(now + pause);
                drop(gate);
                self.emit(Event::Paused { duration: pause });
            }
            Some(Refusal::Isolated) => drop(gate),
            None => {
                delay = delay.max(gate.budget.take(now));
                drop(gate);
            }
        }
        tracing::debug!(
            custom_id,
            attempt = attempts,
            kind = %error.kind,
            refusal = ?refusal,
            delay_ms = delay.as_millis() as u64,
            "retry planned"
        );
        self.emit(Event::Retrying {
            custom_id,
            attempt: attempts,
            kind: error.kind,
            delay,
        });
        Some(now + delay)
    }
}
