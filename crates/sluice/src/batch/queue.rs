//! [`Queue`]: a long-lived batch that calls are submitted to one by one, each awaiting its
//! own result. Separate [`crate::Client::send`] calls are separate batches of one and meet
//! only at the client's limits and permits; submissions to one queue wait in one
//! ready queue, so their priorities order them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use tokio::sync::{mpsc, oneshot};

use crate::Client;
use crate::error::{ErrorKind, RequestError};
use crate::halt::StopEarly;
use crate::outcome::Success;
use crate::request::Request;

type Waiting = Arc<Mutex<HashMap<u64, oneshot::Sender<Result<Success, RequestError>>>>>;

/// Submissions awaiting their results, served in priority order, first come first served
/// within a priority ([`crate::Request::with_priority`], [`crate::Priority`]). Cheap to
/// clone: clones submit to the same queue. The queue's batch ends when the last clone is
/// dropped, after what was submitted has finished.
#[derive(Clone, Debug)]
pub struct Queue {
    submit: mpsc::UnboundedSender<Request>,
    waiting: Waiting,
    next: Arc<AtomicU64>,
}

impl Queue {
    pub(crate) fn start(client: &Client) -> Queue {
        let (submit, submissions) = mpsc::unbounded_channel::<Request>();
        let waiting: Waiting = Arc::default();
        let input = futures::stream::unfold(submissions, |mut rx| async move {
            rx.recv().await.map(|r| (r, rx))
        });
        // A queue serves calls: one call's refused key is that call's error, never a
        // reason to stop the others.
        let mut run = client.run_with(Box::pin(input), Some(StopEarly::never()));
        let results = waiting.clone();
        tokio::spawn(async move {
            while let Some(result) = run.next().await {
                let waiter = lock(&results).remove(&result.tag);
                if let Some(waiter) = waiter {
                    let _ = waiter.send(result.outcome);
                }
            }
            // Stopped (a spend cap): whoever still waits gets an error, not silence.
            let why = match run.cap_stop() {
                Some(stop) => RequestError::new(ErrorKind::SpendCap, stop.to_string()),
                None => RequestError::new(ErrorKind::Cancelled, "the queue stopped"),
            };
            for (_, waiter) in lock(&results).drain() {
                let _ = waiter.send(Err(why.clone()));
            }
        });
        Queue {
            submit,
            waiting,
            next: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Queues `request` and waits for its result. (Its [`Request::tag`] is used by the
    /// queue to match the result.)
    pub async fn submit(&self, mut request: Request) -> Result<Success, RequestError> {
        let key = self.next.fetch_add(1, Ordering::Relaxed);
        request.tag = key;
        let (tx, rx) = oneshot::channel();
        lock(&self.waiting).insert(key, tx);
        if self.submit.send(request).is_err() {
            lock(&self.waiting).remove(&key);
            return Err(RequestError::new(ErrorKind::Cancelled, "the queue stopped"));
        }
        rx.await
            .unwrap_or_else(|_| Err(RequestError::new(ErrorKind::Cancelled, "the queue stopped")))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
