//! The engine: every request, one call or a whole batch, goes through the same stages, each
//! with its home:
//!
//! ```text
//! input ─> scheduler (ready queue: priority, then input order)
//!            │
//!            ├─> gate      (gate.rs: the charge, admission, spend reservation)
//!            ├─> attempt   (attempt.rs: one send through the transport, classified)
//!            └─> settle    (settle.rs: a retry or a final result; the pause a 429 asks)
//!                  │
//!                  └─> delayed queue ─> back to the gate, or the result out
//! ```
//!
//! [`Inner`] is the state the stages share: the gate's lock, permits, statistics, the
//! observer. Each event is emitted by the stage it belongs to: `Sent` by the attempt,
//! `Retrying` and `Paused` by settle, `Finished`, `CapReached` and `Halted` by the
//! scheduler.

mod attempt;
mod batch_run;
mod gate;
mod route;
mod scheduler;
mod settle;

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rand::rngs::SmallRng;
use tokio::sync::Semaphore;

use crate::binding::SharedBinding;
use crate::cost::{PriceTable, SpendCap};
use crate::events::{Event, Observer};
use crate::halt::StopEarly;
use crate::limits::{Admission, ConcurrencyController};
use crate::redact::Redactor;
use crate::retry::{RetryBudget, RetryPolicy};
use crate::stats::Stats;
pub use batch_run::BatchRun;
pub(crate) use gate::Charge;
pub(crate) use route::Route;
pub(crate) use scheduler::spawn_batch;

/// The mutable scheduling state, behind one short-held lock.
#[derive(Debug)]
pub(crate) struct Gate {
    /// The client's admission first, then one per model with its own limits.
    pub admissions: Vec<Admission>,
    /// Model name to its index in `admissions`.
    pub models: std::collections::HashMap<String, usize>,
    pub budget: RetryBudget,
    pub rng: SmallRng,
    /// Congestion refusals since the last success: the pause after one without a hint
    /// doubles with each.
    pub consecutive_limited: u32,
}

/// What every stage of the engine shares; one per [`crate::Client`] and its clones.
pub(crate) struct Inner {
    /// Where requests go: the one endpoint, or several ([`crate::fleet`]).
    pub routes: Vec<Route>,
    pub permits: Arc<Semaphore>,
    /// The most permits there can be.
    pub concurrency: NonZeroUsize,
    /// When the concurrency is found rather than fixed.
    pub adaptive: Option<Mutex<AdaptiveConcurrency>>,
    /// Requests per priority level gained while waiting, if aging is on.
    pub priority_aging: Option<u64>,
    pub retry: RetryPolicy,
    pub gate: Mutex<Gate>,
    pub stats: Mutex<Stats>,
    pub observer: Option<Observer>,
    /// Scrubs the key and other secrets from anything a server echoes back.
    pub redactor: Redactor,
    /// When a batch halts by itself.
    pub stop_early: StopEarly,
    /// What the scheduler waits on now.
    pub binding: SharedBinding,
    /// What costs are counted at.
    pub prices: PriceTable,
    /// Money spent and reserved against a cap, if there is one.
    pub spend: Option<Mutex<SpendCap>>,
    /// Whether any server has answered yet (the end of the initial flight).
    pub answered: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner")
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

/// The concurrency controller and the permits it has granted.
#[derive(Debug)]
pub(crate) struct AdaptiveConcurrency {
    pub(crate) controller: ConcurrencyController,
    pub(crate) current: usize,
}

impl AdaptiveConcurrency {
    /// A controller below `ceiling`, withdrawing from `permits` (which holds `ceiling`) what
    /// it does not grant yet.
    pub(crate) fn start(ceiling: usize, permits: &Semaphore) -> Self {
        let controller = ConcurrencyController::new(8, 1, ceiling);
        let current = controller.limit();
        permits.forget_permits(ceiling - current);
        AdaptiveConcurrency {
            controller,
            current,
        }
    }

    /// Feeds a success's latency; grants or withdraws permits of `permits` to follow the
    /// controller.
    pub(crate) fn follow(&mut self, permits: &Semaphore, latency: Duration) {
        if let Some(limit) = self.controller.on_sample(latency) {
            if limit > self.current {
                permits.add_permits(limit - self.current);
                self.current = limit;
            } else {
                // Only free permits can be withdrawn now; the rest follow at the next change.
                let withdrawn = permits.forget_permits(self.current - limit);
                self.current -= withdrawn;
            }
        }
    }
}

/// A lock whose state stays usable after a panic elsewhere.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Inner {
    pub(crate) fn gate(&self) -> MutexGuard<'_, Gate> {
        // The gate's state stays usable after a panic elsewhere; there is nothing to repair.
        lock(&self.gate)
    }

    /// A server answered (with anything): the first time, every admission's initial flight
    /// ends. Later answers cost one relaxed load.
    pub(crate) fn server_answered(&self) {
        use std::sync::atomic::Ordering;
        if !self.answered.load(Ordering::Relaxed) && !self.answered.swap(true, Ordering::Relaxed) {
            for a in &mut self.gate().admissions {
                a.on_answer();
            }
        }
    }

    /// Requests holding a permit now.
    pub(crate) fn in_flight(&self) -> usize {
        let granted = match &self.adaptive {
            Some(a) => lock(a).current,
            None => self.concurrency.get(),
        };
        granted.saturating_sub(self.permits.available_permits())
    }

    /// Feeds a successful request's latency to the concurrency controller of the endpoint
    /// it went to, or the client's, if there is one, and grants or withdraws permits to
    /// follow it.
    pub(crate) fn concurrency_sample(&self, route: usize, latency: Duration) {
        if let Some(r) = self.routes.get(route)
            && let Some(adaptive) = &r.adaptive
        {
            lock(adaptive).follow(&r.permits, latency);
        } else if let Some(adaptive) = &self.adaptive {
            lock(adaptive).follow(&self.permits, latency);
        }
    }

    pub(crate) fn stats(&self) -> MutexGuard<'_, Stats> {
        lock(&self.stats)
    }

    pub(crate) fn emit(&self, event: Event<'_>) {
        if let Some(observer) = &self.observer {
            observer(&event);
        }
    }

    /// Removes the secrets from bytes a server sent back.
    pub(crate) fn redact(&self, bytes: bytes::Bytes) -> bytes::Bytes {
        self.redactor.redact(bytes)
    }
}
