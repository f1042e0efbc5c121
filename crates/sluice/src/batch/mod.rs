//! [`Batch`]: a batch's options before it starts: a cancellation token, a progress
//! callback, and results in input order instead of completion order.

mod in_order;
mod queue;

use std::num::NonZeroUsize;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use tokio_util::sync::CancellationToken;

use crate::Client;
use crate::engine::BatchRun;
use crate::outcome::BatchResult;
use crate::request::Request;

pub use in_order::InOrder;
pub use queue::Queue;

/// Where a batch stands, for a progress callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Progress {
    /// Requests with their final result.
    pub done: u64,
    /// Requests that failed for good, among `done`.
    pub failed: u64,
    /// Requests in the batch, when the caller said ([`Batch::total`]).
    pub total: Option<u64>,
}

/// Called after each result with where the batch stands.
pub type ProgressCallback = Arc<dyn Fn(Progress) + Send + Sync>;

/// A batch being set up: `client.batch(requests)`, options, then [`Batch::start`] (results
/// in completion order) or [`Batch::in_order`] (input order).
#[must_use = "a batch runs only once started"]
pub struct Batch<'a, S> {
    pub(crate) client: &'a Client,
    pub(crate) requests: S,
    pub(crate) cancel: Option<CancellationToken>,
    pub(crate) progress: Option<ProgressCallback>,
    pub(crate) total: Option<u64>,
    pub(crate) stop_early: Option<crate::halt::StopEarly>,
}

impl<'a, S> Batch<'a, S>
where
    S: Stream<Item = Request> + Send + Unpin + 'static,
{
    pub(crate) fn new(client: &'a Client, requests: S) -> Self {
        Batch {
            client,
            requests,
            cancel: None,
            progress: None,
            total: None,
            stop_early: None,
        }
    }

    /// When the batch stops by itself (default: the client's; see [`crate::halt`]).
    pub fn stop_early(mut self, policy: crate::halt::StopEarly) -> Self {
        self.stop_early = Some(policy);
        self
    }

    /// Stops the batch gracefully when `token` is cancelled: nothing new is sent, requests
    /// in flight finish and their results come out, then the stream ends.
    pub fn cancel_on(mut self, token: CancellationToken) -> Self {
        self.cancel = Some(token);
        self
    }

    /// Calls `callback` after every result with the counts so far.
    pub fn on_progress(mut self, callback: impl Fn(Progress) + Send + Sync + 'static) -> Self {
        self.progress = Some(Arc::new(callback));
        self
    }

    /// How many requests the stream holds, for [`Progress::total`].
    pub fn total(mut self, n: u64) -> Self {
        self.total = Some(n);
        self
    }

    /// Starts it; results come in completion order.
    pub fn start(self) -> Results {
        let Batch {
            client,
            requests,
            cancel,
            progress,
            total,
            stop_early,
        } = self;
        let run = client.run_with(requests, stop_early);
        if let Some(token) = cancel {
            let stop = run.stop_token();
            tokio::spawn(async move {
                tokio::select! {
                    _ = token.cancelled() => stop.cancel(),
                    _ = stop.cancelled() => {}
                }
            });
        }
        Results {
            run,
            progress,
            total,
            done: 0,
            failed: 0,
        }
    }

    /// Starts it; results come in input order. At most `window` requests are between the
    /// oldest without a result and the newest sent, so memory stays bounded however long
    /// one request takes: the batch waits for it rather than buffering without end.
    pub fn in_order(self, window: NonZeroUsize) -> InOrder {
        InOrder::start(self, window)
    }
}

/// A started batch's results in completion order: a [`BatchRun`] that also reports
/// progress.
pub struct Results {
    run: BatchRun,
    progress: Option<ProgressCallback>,
    total: Option<u64>,
    done: u64,
    failed: u64,
}

impl Results {
    /// The batch underneath (to stop it, or ask why it halted).
    pub fn run(&self) -> &BatchRun {
        &self.run
    }

    fn record(&mut self, result: &BatchResult) {
        self.done += 1;
        self.failed += u64::from(result.outcome.is_err());
        if let Some(callback) = &self.progress {
            callback(Progress {
                done: self.done,
                failed: self.failed,
                total: self.total,
            });
        }
    }
}

impl Stream for Results {
    type Item = BatchResult;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<BatchResult>> {
        let polled = self.run.poll_next_unpin(cx);
        if let std::task::Poll::Ready(Some(result)) = &polled {
            self.record(result);
        }
        polled
    }
}
