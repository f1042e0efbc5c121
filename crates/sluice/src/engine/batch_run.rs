//! [`BatchRun`]: the handle a batch's caller holds, its results in completion order.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::Stream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::cost::CapStop;
use crate::halt::Halt;
use crate::outcome::BatchResult;

/// The results of a batch, in completion order.
///
/// [`BatchRun::stop`] ends it gracefully: nothing new is sent, requests in flight finish and
/// their results still come out, then the stream ends; requests not yet finished (queued,
/// or waiting to retry) get no result. Dropping it cancels the batch at once: requests in
/// flight are abandoned and nothing more is read from the input.
#[derive(Debug)]
#[must_use = "a batch runs only while its results are read"]
pub struct BatchRun {
    pub(super) results: mpsc::Receiver<BatchResult>,
    pub(super) task: JoinHandle<()>,
    pub(super) stop: CancellationToken,
    pub(super) halt: Arc<Mutex<Option<Halt>>>,
    pub(super) cap: Arc<Mutex<Option<CapStop>>>,
    pub(super) in_flight: InFlight,
}

/// The tags of the requests sent at least once and not yet finished (a multiset: tags are
/// the caller's and need not be unique).
#[derive(Debug, Clone, Default)]
pub(crate) struct InFlight(Arc<Mutex<BTreeMap<u64, u32>>>);

impl InFlight {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, u32>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn sent(&self, tag: u64) {
        *self.lock().entry(tag).or_default() += 1;
    }

    pub(super) fn finished(&self, tag: u64) {
        let mut tags = self.lock();
        if let Some(n) = tags.get_mut(&tag) {
            *n -= 1;
            if *n == 0 {
                tags.remove(&tag);
            }
        }
    }

    pub(crate) fn tags(&self) -> Vec<u64> {
        self.lock().keys().copied().collect()
    }
}

impl BatchRun {
    /// Stops sending; the stream ends once the requests in flight have finished.
    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// A token that stops the batch when cancelled, for wiring to a shutdown signal.
    pub fn stop_token(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Why the batch stopped by itself, if it did (see [`crate::halt`]): then the stream
    /// ends early, and the requests without a result stay pending.
    pub fn halted(&self) -> Option<Halt> {
        self.halt.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The [`crate::Request::tag`]s of the requests sent and not finished yet (waiting for an
    /// answer or for a retry), ascending: what a checkpoint records, so that a run
    /// resumed after a crash knows which requests may have reached the server.
    pub fn in_flight(&self) -> Vec<u64> {
        self.in_flight.tags()
    }

    /// The live set behind [`BatchRun::in_flight`], for a checkpoint taken while the
    /// results stream is borrowed.
    pub(crate) fn in_flight_handle(&self) -> InFlight {
        self.in_flight.clone()
    }

    /// Why the spend cap stopped admission, if it did: then the stream ends once the
    /// requests in flight have finished, and the rest stay pending (a later run with a
    /// higher cap sends them).
    pub fn cap_stop(&self) -> Option<CapStop> {
        self.cap.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Stream for BatchRun {
    type Item = BatchResult;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<BatchResult>> {
        self.results.poll_recv(cx)
    }
}

impl Drop for BatchRun {
    fn drop(&mut self) {
        self.task.abort();
    }
}
