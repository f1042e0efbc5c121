//! Results in input order, from a bounded reorder buffer.

use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroUsize;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::{Stream, StreamExt};
use tokio::sync::Semaphore;

use super::{Batch, Results};
use crate::engine::BatchRun;
use crate::outcome::BatchResult;
use crate::request::Request;

/// A batch's results in input order (see [`Batch::in_order`]). Each request is numbered as
/// it is pulled from the input (its [`Request::tag`] is kept and given back with its
/// result); a result that comes early waits in a buffer, and the input is pulled only
/// while fewer than `window` requests are between the oldest without a result and the
/// newest, so the buffer never holds more than `window` results.
///
/// A batch that stops (cancelled, halted, over a spend cap) leaves some requests without
/// a result: the results held then come out in order, skipping those.
pub struct InOrder {
    results: Results,
    next: u64,
    held: BTreeMap<u64, BatchResult>,
    /// The caller's tag of each request pulled and not yet handed out, by its number.
    tags: Arc<Mutex<HashMap<u64, u64>>>,
    window: Arc<Semaphore>,
}

impl InOrder {
    pub(super) fn start<S>(batch: Batch<'_, S>, window: NonZeroUsize) -> Self
    where
        S: Stream<Item = Request> + Send + Unpin + 'static,
    {
        let permits = Arc::new(Semaphore::new(window.get()));
        let tags = Arc::new(Mutex::new(HashMap::new()));
        let (for_input, tags_in) = (permits.clone(), tags.clone());
        let mut seq = 0u64;
        let numbered = batch.requests.then(move |mut request| {
            let number = seq;
            seq += 1;
            let (permits, tags) = (for_input.clone(), tags_in.clone());
            async move {
                // The semaphore is never closed; a permit is returned when this request's
                // result is handed out.
                if let Ok(permit) = permits.acquire_owned().await {
                    permit.forget();
                }
                lock(&tags).insert(number, request.tag);
                request.tag = number;
                request
            }
        });
        let results = Batch {
            client: batch.client,
            requests: Box::pin(numbered),
            cancel: batch.cancel,
            progress: batch.progress,
            total: batch.total,
            stop_early: batch.stop_early,
        }
        .start();
        InOrder {
            results,
            next: 0,
            held: BTreeMap::new(),
            tags,
            window: permits,
        }
    }

    /// The batch underneath (to stop it, or ask why it halted).
    pub fn run(&self) -> &BatchRun {
        self.results.run()
    }

    /// Results held, waiting for an earlier one.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Hands out `result`, numbered `number`: its tag restored, its window slot freed.
    fn hand_out(&mut self, number: u64, mut result: BatchResult) -> BatchResult {
        self.next = number + 1;
        self.window.add_permits(1);
        if let Some(tag) = lock(&self.tags).remove(&number) {
            result.tag = tag;
        }
        result
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Stream for InOrder {
    type Item = BatchResult;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<BatchResult>> {
        loop {
            let next = self.next;
            if let Some(result) = self.held.remove(&next) {
                return Poll::Ready(Some(self.hand_out(next, result)));
            }
            match self.results.poll_next_unpin(cx) {
                Poll::Ready(Some(result)) => {
                    let number = result.tag;
                    if number == next {
                        return Poll::Ready(Some(self.hand_out(number, result)));
                    }
                    self.held.insert(number, result);
                }
                Poll::Ready(None) => {
                    // Stopped early: what is held comes out in order, past the gaps.
                    return Poll::Ready(self.held.pop_first().map(|(n, r)| self.hand_out(n, r)));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
