//! The library face: [`Client`] with [`Client::send`] for one call and [`Client::run`] for
//! a batch. Both go through the same engine (see [`crate::engine`]), so calls and batches
//! made through one client share one set of limits.

use std::num::NonZeroUsize;
use std::sync::Arc;

use futures::{Stream, StreamExt};

use crate::binding::Binding;
use crate::engine::{BatchRun, Inner, spawn_batch};
use crate::error::{ErrorKind, RequestError};
use crate::halt::StopEarly;
use crate::outcome::Success;
use crate::redact::Redactor;
use crate::request::Request;
use crate::stats::Stats;

pub use crate::builder::ClientBuilder;

/// A per-minute budget as it stands: the rate admitted now and the limit it keeps under.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RateNow {
    /// Per minute, if the budget exists.
    pub rate: Option<f64>,
    /// Per minute, if known (configured, stated by the server, or learned).
    pub limit: Option<f64>,
}

/// The request and token budgets as they stand.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LimitsNow {
    /// Requests per minute.
    pub requests: RateNow,
    /// Tokens per minute.
    pub tokens: RateNow,
}

/// Sends requests within limits, retrying what is worth retrying. Cheap to clone: clones
/// share everything.
#[derive(Clone, Debug)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

impl Client {
    /// A builder with the defaults.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// Sends one request, waiting for admission and retrying as the policy says.
    ///
    /// It is a batch of one: the same admission, permits, retries, events and statistics
    /// as [`Client::run`], so the two cannot behave differently. A single call never stops
    /// early (see [`crate::halt`]): a refused key is that call's error.
    pub async fn send(&self, request: &Request) -> Result<Success, RequestError> {
        let one = futures::stream::iter([request.clone()]);
        let mut run = spawn_batch(self.inner.clone(), one, StopEarly::never());
        if let Some(result) = run.next().await {
            return result.outcome;
        }
        Err(match run.cap_stop() {
            Some(stop) => {
                self.inner.stats().record_failure(ErrorKind::SpendCap);
                RequestError::new(ErrorKind::SpendCap, stop.to_string())
            }
            None => RequestError::new(ErrorKind::Cancelled, "the call ended without a result"),
        })
    }

    /// Runs a batch: requests are pulled from `requests` only as fast as they can be sent,
    /// and results come out in completion order. Dropping the returned stream cancels the
    /// batch.
    pub fn run<S>(&self, requests: S) -> BatchRun
    where
        S: Stream<Item = Request> + Send + Unpin + 'static,
    {
        spawn_batch(self.inner.clone(), requests, self.inner.stop_early)
    }

    /// A snapshot of the statistics of everything sent through this client.
    pub fn stats(&self) -> Stats {
        self.inner.stats().clone()
    }

    /// What scrubs this client's secrets from text (for callers that print what a server
    /// said, or a command line).
    pub fn redactor(&self) -> &Redactor {
        &self.inner.redactor
    }

    /// What a running batch waits on now (see [`Binding`]): the answer to "why is it not
    /// faster?", for a display to sample.
    pub fn binding(&self) -> Binding {
        self.inner.binding.get()
    }

    /// The client's request and token rates in force and the limits they keep under
    /// (configured, stated by the server, or learned).
    pub fn limits_now(&self) -> LimitsNow {
        let gate = self.inner.gate();
        let main = &gate.admissions[0];
        let ((rpm, tpm), (rpm_limit, tpm_limit)) = (main.rates(), main.ceilings());
        LimitsNow {
            requests: RateNow {
                rate: rpm,
                limit: rpm_limit,
            },
            tokens: RateNow {
                rate: tpm,
                limit: tpm_limit,
            },
        }
    }

    /// Requests holding a permit now.
    pub fn in_flight(&self) -> usize {
        self.inner.in_flight()
    }

    /// The concurrency limit.
    pub fn concurrency(&self) -> NonZeroUsize {
        self.inner.concurrency
    }
}
