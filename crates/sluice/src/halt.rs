//! Stopping a batch early when it cannot succeed: a wrong key, a wrong URL, an account
//! without money, or a server that cannot be reached. Without this, a run with a bad key
//! burns the whole file on 401s, and one with nothing listening retries every request for
//! minutes in silence.
//!
//! The rule: while no request has succeeded, failures whose cause no retry can fix are
//! held back instead of being reported. When [`StopEarly::after`] of them share one cause
//! (or the batch ends with only those), the batch halts: nothing new is sent, the held
//! failures and those of the same cause from requests still in flight are dropped, so
//! those requests stay pending and a later run sends them again once the cause is fixed.
//! Any success, or a failure of another kind, releases what was held as ordinary results.

use std::num::NonZeroU32;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::{ErrorKind, RequestError};
use crate::outcome::BatchResult;

/// The results a [`Tripwire`] lets through at once: one, nearly always, kept in place.
pub(crate) type Deliver = smallvec::SmallVec<[BatchResult; 1]>;

/// Why a batch stopped by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HaltReason {
    /// 401: the key is missing, wrong or revoked.
    Unauthorized,
    /// 403: the key has no access to this API or model.
    Forbidden,
    /// 402: the account must pay first.
    PaymentRequired,
    /// 429 `insufficient_quota`: the account's quota or spend limit is used up.
    InsufficientQuota,
    /// 404 for the URL itself (not for a model): the base URL is wrong.
    NotFound,
    /// 3xx: the base URL redirects elsewhere.
    Redirect,
    /// No connection could be made for the whole of [`StopEarly::unreachable_after`].
    Unreachable,
}

impl HaltReason {
    /// A stable name, for machines.
    pub const fn code(self) -> &'static str {
        match self {
            HaltReason::Unauthorized => "unauthorized",
            HaltReason::Forbidden => "forbidden",
            HaltReason::PaymentRequired => "payment_required",
            HaltReason::InsufficientQuota => "insufficient_quota",
            HaltReason::NotFound => "not_found",
            HaltReason::Redirect => "redirect",
            HaltReason::Unreachable => "unreachable",
        }
    }

    /// The cause a request's final failure shows, if it is one no retry can fix for any
    /// request of the batch.
    pub fn of(error: &RequestError) -> Option<HaltReason> {
        match error.kind {
            ErrorKind::Auth if error.status == Some(403) => Some(HaltReason::Forbidden),
            ErrorKind::Auth => Some(HaltReason::Unauthorized),
            ErrorKind::PaymentRequired => Some(HaltReason::PaymentRequired),
            ErrorKind::InsufficientQuota => Some(HaltReason::InsufficientQuota),
            // A 404 that names a model is about that request's model, not the URL.
            ErrorKind::NotFound if !mentions_model(error) => Some(HaltReason::NotFound),
            ErrorKind::Redirect => Some(HaltReason::Redirect),
            _ => None,
        }
    }
}

fn mentions_model(error: &RequestError) -> bool {
    error
        .body
        .as_ref()
        .is_some_and(|b| memchr::memmem::find(&b.to_ascii_lowercase(), b"model").is_some())
}

/// Why a batch halted, with the first failure that showed it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Halt {
    /// The cause.
    pub reason: HaltReason,
    /// The first failure of that cause (status, the server's words, body).
    pub error: RequestError,
    /// Failures of that cause that were dropped and stay pending.
    pub dropped: u64,
}

/// When a batch stops by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct StopEarly {
    /// Whether it does at all.
    pub enabled: bool,
    /// Failures of one cause, before any success, that halt the batch.
    pub after: NonZeroU32,
    /// How long every attempt may fail to connect, before any answer, until the batch
    /// halts as unreachable.
    pub unreachable_after: Duration,
}

impl Default for StopEarly {
    fn default() -> Self {
        StopEarly {
            enabled: true,
            after: NonZeroU32::new(3).expect("3 > 0"),
            unreachable_after: Duration::from_secs(30),
        }
    }
}

impl StopEarly {
    /// Never stops early.
    pub fn never() -> Self {
        StopEarly {
            enabled: false,
            ..StopEarly::default()
        }
    }

    /// Halts after `n` failures of one cause before any success.
    pub fn after(mut self, n: NonZeroU32) -> Self {
        self.after = n;
        self
    }

    /// Halts as unreachable after `d` without any connection.
    pub fn unreachable_after(mut self, d: Duration) -> Self {
        self.unreachable_after = d;
        self
    }
}

/// The batch's watch for a cause that dooms it. Owned by the scheduler task.
#[derive(Debug)]
pub(crate) struct Tripwire {
    policy: StopEarly,
    succeeded: bool,
    answered: bool,
    first_attempt: Option<Instant>,
    held: Vec<(HaltReason, BatchResult)>,
    halted: Option<Halt>,
}

impl Tripwire {
    pub(crate) fn new(policy: StopEarly) -> Self {
        Tripwire {
            policy,
            succeeded: false,
            answered: false,
            first_attempt: None,
            held: Vec::new(),
            halted: None,
        }
    }

    /// The halt, once there is one.
    pub(crate) fn halted(&self) -> Option<&Halt> {
        self.halted.as_ref()
    }

    /// An attempt went out.
    pub(crate) fn on_attempt(&mut self, now: Instant) {
        self.first_attempt.get_or_insert(now);
    }

    /// A server answered (any status).
    pub(crate) fn on_answer(&mut self) {
        self.answered = true;
    }

    /// An attempt could not connect; halts when nothing has connected for long enough.
    /// Returns true when this halted the batch.
    pub(crate) fn on_connect_failure(&mut self, now: Instant, error: &RequestError) -> bool {
        if !self.policy.enabled || self.answered || self.halted.is_some() {
            return false;
        }
        let since = self.first_attempt.get_or_insert(now);
        if now.duration_since(*since) < self.policy.unreachable_after {
            return false;
        }
        self.halted = Some(Halt {
            reason: HaltReason::Unreachable,
            error: error.clone(),
            dropped: 0,
        });
        true
    }

    /// A request's final result. Returns what to deliver now (in order), and whether this
    /// result halted the batch. Almost always that is this one result, which then needs no
    /// allocation.
    pub(crate) fn on_result(&mut self, result: BatchResult) -> (Deliver, bool) {
        let cause = match &result.outcome {
            Err(e) if self.policy.enabled => HaltReason::of(e),
            _ => None,
        };
        if let Some(halt) = &mut self.halted {
            if cause == Some(halt.reason) {
                halt.dropped += 1;
                return (Deliver::new(), false);
            }
            return (smallvec::smallvec![result], false);
        }
        match cause {
            Some(reason) if !self.succeeded => {
                if self.held.first().is_some_and(|(r, _)| *r != reason) {
                    // Two different causes: not one thing wrong with the whole run.
                    let mut out: Deliver = self.release();
                    out.push(result);
                    return (out, false);
                }
                self.held.push((reason, result));
                if self.held.len() >= self.policy.after.get() as usize {
                    self.trip();
                    return (Deliver::new(), true);
                }
                (Deliver::new(), false)
            }
            _ => {
                if result.outcome.is_ok() {
                    self.succeeded = true;
                }
                let mut out: Deliver = self.release();
                out.push(result);
                (out, false)
            }
        }
    }

    /// The batch ran out of work. Held failures halt it when it ended by itself (every
    /// request failed the same way), and are delivered when it was stopped from outside.
    pub(crate) fn at_end(&mut self, stopped: bool) -> (Vec<BatchResult>, bool) {
        if self.held.is_empty() || self.halted.is_some() {
            return (self.release(), false);
        }
        if stopped {
            return (self.release(), false);
        }
        self.trip();
        (Vec::new(), true)
    }

    fn trip(&mut self) {
        let held = std::mem::take(&mut self.held);
        let dropped = held.len() as u64;
        let Some((reason, first)) = held.into_iter().next() else {
            return;
        };
        if let Err(error) = first.outcome {
            self.halted = Some(Halt {
                reason,
                error,
                dropped,
            });
        }
    }

    fn release<C: FromIterator<BatchResult>>(&mut self) -> C {
        self.held.drain(..).map(|(_, r)| r).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(tag: u64, outcome: Result<(), (ErrorKind, u16, &'static str)>) -> BatchResult {
        BatchResult {
            custom_id: format!("r{tag}"),
            tag,
            outcome: match outcome {
                Ok(()) => Ok(crate::outcome::Success {
                    status: 200,
                    request_id: None,
                    body: bytes::Bytes::from_static(b"{}"),
                    usage: Default::default(),
                    cost: None,
                }),
                Err((kind, status, body)) => {
                    let mut e = RequestError::new(kind, "m");
                    e.status = Some(status);
                    e.body = Some(bytes::Bytes::from_static(body.as_bytes()));
                    Err(e)
                }
            },
            attempts: 1,
            latency: Duration::ZERO,
        }
    }

    const AUTH: (ErrorKind, u16, &str) = (ErrorKind::Auth, 401, "{}");

    #[test]
    fn three_failures_of_one_cause_before_any_success_halt_and_are_dropped() {
        let mut t = Tripwire::new(StopEarly::default());
        assert!(t.on_result(result(1, Err(AUTH))).0.is_empty());
        assert!(t.on_result(result(2, Err(AUTH))).0.is_empty());
        let (out, halted) = t.on_result(result(3, Err(AUTH)));
        assert!(out.is_empty() && halted);
        assert_eq!(t.halted().unwrap().reason, HaltReason::Unauthorized);
        // In-flight requests of the same cause stay pending; others are delivered.
        assert!(t.on_result(result(4, Err(AUTH))).0.is_empty());
        assert_eq!(t.on_result(result(5, Ok(()))).0.len(), 1);
        assert_eq!(t.halted().unwrap().dropped, 4);
    }

    #[test]
    fn a_success_or_another_cause_releases_what_was_held() {
        let mut t = Tripwire::new(StopEarly::default());
        t.on_result(result(1, Err(AUTH)));
        let (out, halted) = t.on_result(result(2, Ok(())));
        assert_eq!(out.iter().map(|r| r.tag).collect::<Vec<_>>(), vec![1, 2]);
        assert!(!halted);
        // After a success, nothing is held any more.
        assert_eq!(t.on_result(result(3, Err(AUTH))).0.len(), 1);

        let mut t = Tripwire::new(StopEarly::default());
        t.on_result(result(1, Err(AUTH)));
        let quota = (ErrorKind::InsufficientQuota, 429, "{}");
        assert_eq!(t.on_result(result(2, Err(quota))).0.len(), 2);
    }

    #[test]
    fn a_404_naming_a_model_is_the_requests_own_failure() {
        let mut t = Tripwire::new(StopEarly::default());
        let model = (
            ErrorKind::NotFound,
            404,
            r#"{"error":{"code":"model_not_found"}}"#,
        );
        assert_eq!(t.on_result(result(1, Err(model))).0.len(), 1);
        let url = (ErrorKind::NotFound, 404, "");
        assert!(t.on_result(result(2, Err(url))).0.is_empty());
    }

    #[test]
    fn a_batch_that_ends_with_only_held_failures_halts_unless_stopped() {
        let mut t = Tripwire::new(StopEarly::default());
        t.on_result(result(1, Err(AUTH)));
        assert!(t.at_end(false).1);
        let mut t = Tripwire::new(StopEarly::default());
        t.on_result(result(1, Err(AUTH)));
        assert_eq!(t.at_end(true).0.len(), 1);
        let mut t = Tripwire::new(StopEarly::never());
        assert_eq!(t.on_result(result(1, Err(AUTH))).0.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn unreachable_only_after_the_whole_window_without_any_answer() {
        let policy = StopEarly::default();
        let e = RequestError::new(ErrorKind::Connect, "refused");
        let mut t = Tripwire::new(policy);
        let start = Instant::now();
        t.on_attempt(start);
        assert!(!t.on_connect_failure(start + Duration::from_secs(29), &e));
        assert!(t.on_connect_failure(start + Duration::from_secs(30), &e));
        assert_eq!(t.halted().unwrap().reason, HaltReason::Unreachable);
        let mut t = Tripwire::new(policy);
        t.on_attempt(start);
        t.on_answer();
        assert!(!t.on_connect_failure(start + Duration::from_secs(60), &e));
    }
}
