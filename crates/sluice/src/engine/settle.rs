//! The settle stage for a failed attempt worth another: whether it goes again and when,
//! and what a refusal means for everyone (a shared pause, a lower rate).

use tokio::time::Instant;

use super::attempt::Retryable;
use super::{Charge, Inner};
use crate::events::Event;
use crate::limits::Refusal;
use crate::retry::{Decision, Failure, RetryState, decide};

impl Inner {
    /// Decides when a failed attempt goes again, or that it does not (then the error says
    /// why, in [`crate::RequestError::gave_up`]). The request's own decision is
    /// [`crate::retry::decide`]; around it, a 429 is weighed by the gate: congestion pauses
    /// everyone (for what the server asked, or a pause that grows with consecutive
    /// refusals when it asked nothing) and lowers the rate once per episode; an isolated
    /// refusal makes only this request wait. Other failures draw on the retry budget.
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
        if r.rate_limited {
            self.stats().rate_limited += 1;
        }
        // A 429 or an overload (529, or a 503 that says so) may mean the rate is too high
        // for the server now.
        let refusal = (r.rate_limited || r.overloaded)
            .then(|| self.gate().admissions[charge.gate].on_limited(now, sent, r.stated));
        let failure = Failure {
            rate_limited: r.rate_limited,
            server_delay: r.server_delay,
        };
        let mut gate = self.gate();
        let mut delay = match decide(policy, state, failure, attempts, now, &mut gate.rng) {
            Decision::Retry { delay } => delay,
            Decision::GiveUp(why) => {
                r.error.gave_up = Some(why);
                return None;
            }
        };
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
            // A probe slowed the rate; an isolated refusal changed nothing: either way only
            // this request waits.
            Some(Refusal::Slowed | Refusal::Isolated) => drop(gate),
            None => {
                delay = delay.max(gate.budget.take(now));
                drop(gate);
            }
        }
        tracing::debug!(
            custom_id,
            attempt = attempts,
            kind = %r.error.kind,
            refusal = ?refusal,
            delay_ms = delay.as_millis() as u64,
            "retry planned"
        );
        self.emit(Event::Retrying {
            custom_id,
            attempt: attempts,
            kind: r.error.kind,
            delay,
        });
        Some(now + delay)
    }
}
