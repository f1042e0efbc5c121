//! `NativeBatch`: a batch Python feeds and drains in chunks (one crossing per chunk, not per
//! request), bounded at both ends: `push_many` waits while the engine's queue is full, and
//! the engine waits while results are not read.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::{FutureExt, StreamExt};
use pyo3::prelude::*;
use pyo3_async_runtimes::tokio::{future_into_py, get_runtime};
use sluice::Request;
use sluice::batch::Results;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::client::endpoint;
use crate::outcome::NativeResult;

/// A running batch.
#[pyclass(frozen, module = "sluice._sluice")]
pub struct NativeBatch {
    input: Mutex<Option<mpsc::Sender<Request>>>,
    results: Arc<tokio::sync::Mutex<Results>>,
    stop: CancellationToken,
}

/// A request as Python hands it: `(body, endpoint, custom_id, tag, priority)`.
type Item = (Vec<u8>, String, String, u64, i32);

impl NativeBatch {
    pub(crate) fn start(client: &sluice::Client, window: usize) -> PyResult<Self> {
        let (tx, rx) = mpsc::channel::<Request>(window);
        let input =
            futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|r| (r, rx)) });
        let stop = CancellationToken::new();
        let _inside = get_runtime().enter();
        let results = client
            .batch(Box::pin(input))
            .cancel_on(stop.clone())
            .start();
        Ok(NativeBatch {
            input: Mutex::new(Some(tx)),
            results: Arc::new(tokio::sync::Mutex::new(results)),
            stop,
        })
    }

    fn sender(&self) -> Option<mpsc::Sender<Request>> {
        self.input.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[pymethods]
impl NativeBatch {
    /// Queues `items`, waiting while the queue is full; resolves to how many were taken
    /// (fewer only when the batch was stopped).
    fn push_many<'py>(&self, py: Python<'py>, items: Vec<Item>) -> PyResult<Bound<'py, PyAny>> {
        let mut requests = Vec::with_capacity(items.len());
        for (body, path, custom_id, tag, priority) in items {
            requests.push(Request {
                custom_id,
                endpoint: endpoint(&path)?,
                body: Bytes::from(body),
                priority,
                tag,
            });
        }
        let sender = self.sender();
        future_into_py(py, async move {
            let Some(sender) = sender else {
                return Ok(0usize);
            };
            let mut taken = 0;
            for request in requests {
                if sender.send(request).await.is_err() {
                    break;
                }
                taken += 1;
            }
            Ok(taken)
        })
    }

    /// No more input: the batch ends once what was pushed has its results.
    fn close(&self) {
        self.input.lock().unwrap_or_else(|e| e.into_inner()).take();
    }

    /// Stops gracefully: nothing new is sent, what is in flight finishes.
    fn stop(&self) {
        self.stop.cancel();
        self.close();
    }

    /// Resolves to the next results, at least one and at most `most`, or an empty list when
    /// the batch has ended.
    fn next_many<'py>(&self, py: Python<'py>, most: usize) -> PyResult<Bound<'py, PyAny>> {
        let results = self.results.clone();
        future_into_py(py, async move {
            let mut results = results.lock().await;
            let mut out = Vec::new();
            if let Some(first) = results.next().await {
                out.push(NativeResult::of(first));
                while out.len() < most.max(1) {
                    match results.next().now_or_never() {
                        Some(Some(r)) => out.push(NativeResult::of(r)),
                        _ => break,
                    }
                }
            }
            Ok(out)
        })
    }
}

impl Drop for NativeBatch {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
