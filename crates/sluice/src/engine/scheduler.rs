//! The batch scheduler: one task that pulls requests from the input as the queue needs
//! them, admits them through the gate, sends each on its own task with a concurrency
//! permit, and decides what happens to every answer.
//!
//! ```text
//! input ──> ready queue (priority, then input order) ──> gate + permit ──> attempt task
//!              ^                                                              │
//!              └── delayed queue (not-before time) <── retry ── classify <────┘
//!                                                                │
//!                                                       final ──> results stream
//! ```
//!
//! A retry waits in the delayed queue, holding no permit. Only this task touches the
//! queues, so they need no lock; the gate's lock is held for a few instructions per request.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::Either;
use futures::{FutureExt, Stream, StreamExt};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::attempt::Attempt;
use super::batch_run::{BatchRun, InFlight};
use super::gate::too_large;
use super::route::Admit;
use super::{Charge, Inner};
use crate::cost::CapStop;
use crate::error::{ErrorKind, RequestError};

use crate::binding::Binding;
use crate::events::Event;
use crate::halt::{Halt, StopEarly, Tripwire};
use crate::outcome::BatchResult;
use crate::request::Request;
use crate::retry::RetryState;

/// A request waiting its turn.
struct Item {
    request: Request,
    /// Input order, for FIFO within a priority.
    seq: u64,
    /// Dispatch rank: higher first. Priority, then input order; with aging, a request
    /// gains one priority level for every `aging` requests that arrive after it.
    rank: i128,
    charge: Charge,
    /// Dollars reserved under the spend cap at its first attempt.
    reserved: f64,
    attempts: u32,
    retry: RetryState,
}

/// The rank of a request of `priority` that arrived `seq`-th: `priority × span − seq`, with
/// `span` the aging step (requests per level) or, without aging, more requests than can
/// ever arrive, which makes it plain "priority, then input order". The rank is fixed when
/// the request arrives, so the heap never needs reordering, and a retry keeps it.
pub(crate) fn rank(priority: i32, seq: u64, aging: Option<u64>) -> i128 {
    let span = aging.map_or(1i128 << 64, |a| i128::from(a.max(1)));
    i128::from(priority) * span - i128::from(seq)
}

/// Orders the ready queue: higher rank first (see [`rank`]). Boxed, as everywhere an
/// item travels: the heap moves items up and down its levels, and a request moves from
/// queue to attempt task and back, as a pointer instead of some two hundred bytes.
struct Ready(Box<Item>);

impl PartialEq for Ready {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Ready {}
impl PartialOrd for Ready {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ready {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.0.rank, Reverse(self.0.seq)).cmp(&(other.0.rank, Reverse(other.0.seq)))
    }
}

/// A retry waiting for its time, `at`. Orders the delayed queue: earliest first (as a
/// max-heap of `Reverse`).
struct Delayed {
    at: Instant,
    item: Box<Item>,
}

impl PartialEq for Delayed {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Delayed {}
impl PartialOrd for Delayed {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Delayed {
    fn cmp(&self, other: &Self) -> Ordering {
        Reverse((self.at, self.item.seq)).cmp(&Reverse((other.at, other.item.seq)))
    }
}

pub(crate) fn spawn_batch<S>(inner: Arc<Inner>, input: S, stop_early: StopEarly) -> BatchRun
where
    S: Stream<Item = Request> + Send + Unpin + 'static,
{
    let (tx, rx) = mpsc::channel(1024);
    let stop = CancellationToken::new();
    let halt = Arc::new(Mutex::new(None));
    let cap = Arc::new(Mutex::new(None));
    let in_flight = InFlight::default();
    let prepared = prepare(inner.clone(), input);
    let scheduler = Scheduler::new(
        inner,
        tx,
        stop.clone(),
        halt.clone(),
        cap.clone(),
        in_flight.clone(),
        stop_early,
    );
    let task = tokio::spawn(scheduler.run(prepared));
    BatchRun {
        results: rx,
        task,
        stop,
        halt,
        cap,
        in_flight,
    }
}

/// Requests with what admission charges them, in input order.
type Prepared = Pin<Box<dyn Stream<Item = (Request, Charge)> + Send>>;

/// Requests estimated together, in chunks, ahead of the scheduler.
const PREPARE_CHUNK: usize = 64;
/// Chunks estimated at once ahead of the scheduler.
const PREPARE_AHEAD: usize = 4;
/// A chunk of bodies up to this size is estimated in line: counting a short chat
/// request's tokens takes about 0.5 µs, less than handing the chunk to another thread and
/// waking the scheduler when it is done costs (docs/BENCHMARKS.md, "Tokens at wire
/// speed"). Larger chunks (long prompts, where counting is the costly step) go to the
/// blocking pool.
const PREPARE_INLINE_BYTES: usize = 64 * 1024;

/// Computes each request's charge. Where tokens are counted (a TPM budget or a spend
/// cap), that is the one costly step per request on long prompts, so their chunks run on
/// the blocking pool, several ahead, in input order: the scheduler's thread sends while
/// another core counts. Short requests, and every request without token counting (the
/// charge is then a lookup), are charged in line.
fn prepare<S>(inner: Arc<Inner>, input: S) -> Prepared
where
    S: Stream<Item = Request> + Send + Unpin + 'static,
{
    if !inner.counts_tokens() {
        return Box::pin(input.map(move |r| {
            let charge = inner.charge(&r);
            (r, charge)
        }));
    }
    let charge_all = |inner: &Inner, chunk: Vec<Request>| {
        chunk
            .into_iter()
            .map(|r| {
                let charge = inner.charge(&r);
                (r, charge)
            })
            .collect::<Vec<_>>()
    };
    Box::pin(
        input
            .ready_chunks(PREPARE_CHUNK)
            .map(move |chunk| {
                let bytes: usize = chunk.iter().map(|r| r.body.len()).sum();
                if bytes <= PREPARE_INLINE_BYTES {
                    return Either::Left(std::future::ready(Ok(charge_all(&inner, chunk))));
                }
                let inner = inner.clone();
                Either::Right(tokio::task::spawn_blocking(move || {
                    charge_all(&inner, chunk)
                }))
            })
            .buffered(PREPARE_AHEAD)
            .flat_map(|done| {
                // Estimation does not panic short of a bug; if it did, the batch's task
                // fails with the same panic rather than dropping requests.
                let prepared = done.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
                futures::stream::iter(prepared)
            }),
    )
}

/// What an attempt task hands back.
struct Finished {
    item: Box<Item>,
    outcome: Attempt,
    /// When it was sent.
    sent: Instant,
    /// When its answer (or failure) was in: the time its settling counts from, read once.
    at: Instant,
}

struct Scheduler {
    inner: Arc<Inner>,
    results: mpsc::Sender<BatchResult>,
    ready: BinaryHeap<Ready>,
    delayed: BinaryHeap<Delayed>,
    tasks: JoinSet<Finished>,
    /// How many requests to hold ready ahead of the permits.
    lookahead: usize,
    next_seq: u64,
    stop: CancellationToken,
    /// Watches for a cause that dooms the batch.
    tripwire: Tripwire,
    /// Where the halt is published for [`BatchRun::halted`].
    halt: Arc<Mutex<Option<Halt>>>,
    /// Where a spend cap's stop is published for [`BatchRun::cap_stop`].
    cap: Arc<Mutex<Option<CapStop>>>,
    /// The tags of requests sent and not yet finished, for [`BatchRun::in_flight`].
    in_flight: InFlight,
}

/// How the scheduling loop ended.
enum Ended {
    /// Every request has its result.
    Done,
    /// Stopped (from outside, or by a halt) and drained.
    Stopped,
    /// The results stream is gone.
    Gone,
}

impl Scheduler {
    fn new(
        inner: Arc<Inner>,
        results: mpsc::Sender<BatchResult>,
        stop: CancellationToken,
        halt: Arc<Mutex<Option<Halt>>>,
        cap: Arc<Mutex<Option<CapStop>>>,
        in_flight: InFlight,
        stop_early: StopEarly,
    ) -> Self {
        let lookahead = (inner.concurrency.get() * 2).max(64);
        Scheduler {
            tripwire: Tripwire::new(stop_early),
            halt,
            cap,
            inner,
            results,
            ready: BinaryHeap::new(),
            delayed: BinaryHeap::new(),
            tasks: JoinSet::new(),
            lookahead,
            next_seq: 0,
            stop,
            in_flight,
        }
    }

    fn enqueue(&mut self, (request, charge): (Request, Charge)) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let rank = rank(request.priority, seq, self.inner.priority_aging);
        self.ready.push(Ready(Box::new(Item {
            request,
            seq,
            rank,
            charge,
            reserved: 0.0,
            attempts: 0,
            retry: RetryState::default(),
        })));
    }

    async fn run(mut self, input: Prepared) {
        let ended = self.schedule(input).await;
        if matches!(ended, Ended::Gone) {
            return;
        }
        let (held, halted) = self.tripwire.at_end(matches!(ended, Ended::Stopped));
        self.inner.binding.set(Binding::Idle);
        if halted {
            self.publish_halt();
        } else if let Some(halt) = self.tripwire.halted() {
            // The final count of what it dropped.
            *self.halt.lock().unwrap_or_else(|e| e.into_inner()) = Some(halt.clone());
        }
        for result in held {
            if !self.deliver(result).await {
                return;
            }
        }
    }

    async fn schedule(&mut self, mut input: Prepared) -> Ended {
        let mut input_done = false;
        // Made once: made anew each round, it would join the token's waiters and leave
        // them again (a lock each way) for every answer.
        let stopped = self.stop.clone().cancelled_owned();
        tokio::pin!(stopped);
        loop {
            let stopping = self.stop.is_cancelled();
            if stopping {
                // Drain: no new input, no new attempts; wait for those in flight.
                if self.tasks.is_empty() {
                    return Ended::Stopped;
                }
                match self.tasks.join_next().await {
                    Some(Ok(finished)) => {
                        if !self.settle(finished).await {
                            return Ended::Gone;
                        }
                    }
                    Some(Err(err)) => tracing::error!(%err, "an attempt task failed"),
                    None => return Ended::Stopped,
                }
                continue;
            }
            // Top up the ready queue with what the input has at hand, without waiting.
            while !input_done && self.ready.len() < self.lookahead {
                match input.next().now_or_never() {
                    Some(Some(request)) => self.enqueue(request),
                    Some(None) => input_done = true,
                    None => break,
                }
            }
            let now = Instant::now();
            while self.delayed.peek().is_some_and(|d| d.at <= now) {
                if let Some(Delayed { item, .. }) = self.delayed.pop() {
                    self.ready.push(Ready(item));
                }
            }
            let (wake_at, need_permit, gate_wait) = match self.dispatch(now).await {
                Some(x) => x,
                None => return Ended::Gone,
            };
            let binding = if need_permit {
                Binding::Concurrency
            } else if let Some(b) = gate_wait {
                b
            } else if !input_done {
                Binding::Input
            } else if !self.delayed.is_empty() {
                Binding::Retries
            } else if !self.tasks.is_empty() {
                Binding::Server
            } else {
                Binding::Idle
            };
            if binding != self.inner.binding.get() {
                tracing::debug!(waiting_on = binding.code(), "admission");
            }
            self.inner.binding.set(binding);
            if input_done
                && self.ready.is_empty()
                && self.delayed.is_empty()
                && self.tasks.is_empty()
            {
                return Ended::Done;
            }
            let wake_at = [wake_at, self.delayed.peek().map(|d| d.at)]
                .into_iter()
                .flatten()
                .min();
            let permits = self.inner.permits.clone();
            tokio::select! {
                biased;
                Some(joined) = self.tasks.join_next(), if !self.tasks.is_empty() => {
                    // Every other attempt that has finished is settled with it: one round
                    // of admission for the lot, not one for each.
                    let mut next = Some(joined);
                    while let Some(joined) = next {
                        match joined {
                            Ok(finished) => {
                                if !self.settle(finished).await {
                                    return Ended::Gone;
                                }
                            }
                            // An attempt task panicked or was aborted: its item is lost with
                            // it, which cannot happen short of a bug; keep the batch going.
                            Err(err) => tracing::error!(%err, "an attempt task failed"),
                        }
                        next = self.tasks.try_join_next();
                    }
                }
                // A permit came free from a call outside this batch. While this batch's own
                // attempts hold every permit there can be, only their end frees one, and
                // that wakes the loop anyway: the semaphore's queue (a lock to join and one
                // to leave, each round) is not waited in.
                _ = permits.acquire_owned(), if need_permit && self.tasks.len() < self.inner.concurrency.get() => {}
                _ = &mut stopped => {}
                _ = tokio::time::sleep_until(wake_at.unwrap_or(now)), if wake_at.is_some() => {}
                next = input.next(), if !input_done && self.ready.len() < self.lookahead => match next {
                    Some(request) => self.enqueue(request),
                    None => input_done = true,
                },
            }
        }
    }

    /// Sends as many ready requests as permits and the gate allow. Returns when to look
    /// again for the gate's sake and whether it stopped for want of a permit; `None` if the
    /// results stream is gone.
    async fn dispatch(&mut self, now: Instant) -> Option<(Option<Instant>, bool, Option<Binding>)> {
        // With per-model budgets, a request waiting on its model's budget must not hold
        // back requests for other models: it is set aside for this round, and so is every
        // later request of the same budget (their order within it is kept).
        // The same holds for requests whose endpoints are all busy or out, with several.
        let several = self.inner.gate().admissions.len() > 1;
        let fleet = self.inner.routes.len() > 1;
        let mut parked: Vec<Ready> = Vec::new();
        let mut blocked: Vec<u64> = Vec::new();
        let mut wake: Option<Instant> = None;
        let mut out_of_permits = false;
        let mut gate_wait = None;
        while let Some(head) = self.ready.peek() {
            // What it waits on: its admission, or with several endpoints, the set of them.
            let key = if fleet {
                head.0.charge.routes
            } else {
                head.0.charge.gate as u64
            };
            if blocked.contains(&key) {
                parked.extend(self.ready.pop());
                continue;
            }
            let Ok(permit) = self.inner.permits.clone().try_acquire_owned() else {
                out_of_permits = true;
                break;
            };
            let decision = match self.ready.peek_mut() {
                Some(mut top) => self.inner.admit(&mut top.0.charge, now),
                None => break,
            };
            match decision {
                Admit::Now(route_permit) => {
                    let Some(head) = self.ready.peek() else {
                        break;
                    };
                    if head.0.attempts == 0 {
                        match self.inner.reserve(head.0.charge, &head.0.request) {
                            Ok(amount) => {
                                if let Some(mut top) = self.ready.peek_mut() {
                                    top.0.reserved = amount;
                                }
                            }
                            Err(stop) => {
                                drop(permit);
                                self.publish_cap_stop(stop);
                                break;
                            }
                        }
                    }
                    let Some(Ready(mut item)) = self.ready.pop() else {
                        break;
                    };
                    item.attempts += 1;
                    if item.attempts == 1 {
                        self.inner.gate().budget.deposit();
                        self.in_flight.sent(item.request.tag);
                    }
                    self.tripwire.on_attempt(now);
                    self.inner.stats().record_attempt(item.attempts);
                    let inner = self.inner.clone();
                    self.tasks.spawn(async move {
                        let sent = Instant::now();
                        let outcome = inner
                            .attempt(&item.request, item.attempts, item.charge)
                            .await;
                        drop(route_permit);
                        drop(permit);
                        Finished {
                            item,
                            outcome,
                            sent,
                            at: Instant::now(),
                        }
                    });
                }
                Admit::Wait(at, why) => {
                    wake = Some(wake.map_or(at, |w| w.min(at)));
                    gate_wait.get_or_insert(why);
                    if !several {
                        break;
                    }
                    blocked.push(key);
                    parked.extend(self.ready.pop());
                }
                // Its endpoints are all busy: an attempt's end wakes the loop.
                Admit::Busy => {
                    drop(permit);
                    gate_wait.get_or_insert(Binding::Concurrency);
                    blocked.push(key);
                    parked.extend(self.ready.pop());
                }
                Admit::NoRoute => {
                    drop(permit);
                    let Some(Ready(item)) = self.ready.pop() else {
                        break;
                    };
                    let model = crate::request::request_model(&item.request.body)
                        .unwrap_or_default()
                        .into_owned();
                    let error = RequestError::new(
                        ErrorKind::NotFound,
                        format!(
                            "no endpoint serves model `{model}`; add it to an endpoint's models"
                        ),
                    );
                    if !self.finish(item, Err(error), Duration::ZERO).await {
                        return None;
                    }
                }
                Admit::Never { limit } => {
                    drop(permit);
                    let Some(Ready(item)) = self.ready.pop() else {
                        break;
                    };
                    let error = too_large(item.charge.estimate.cost(), limit);
                    if !self.finish(item, Err(error), Duration::ZERO).await {
                        return None;
                    }
                }
            }
        }
        self.ready.extend(parked);
        Some((wake, out_of_permits, gate_wait))
    }

    /// Handles a finished attempt: a result, or a retry in the delayed queue. False if the
    /// results stream is gone.
    async fn settle(&mut self, f: Finished) -> bool {
        let Finished {
            mut item,
            outcome,
            sent,
            at,
        } = f;
        let latency = at - sent;
        let outcome = self.inner.route_answered(&mut item.charge, outcome, at);
        match &outcome {
            Attempt::Retry(r) if r.error.status.is_none() => {
                if r.error.kind == ErrorKind::Connect
                    && self.tripwire.on_connect_failure(at, &r.error)
                {
                    self.publish_halt();
                }
            }
            _ => {
                self.tripwire.on_answer();
                self.inner.server_answered();
            }
        }
        match outcome {
            Attempt::Done(success) => {
                self.inner.correct(item.charge, &success, sent, at);
                self.inner.concurrency_sample(item.charge.route, latency);
                self.inner.stats().record_success(&success, latency);
                self.finish(item, Ok(success), latency).await
            }
            Attempt::Fail(error) => self.finish(item, Err(error), latency).await,
            // Stopping (from outside or by a halt): no retry is planned or counted; the
            // request stays pending, without a result, for the next run.
            Attempt::Retry(_) if self.stop.is_cancelled() => true,
            Attempt::Retry(mut retry) => {
                let planned = self.inner.plan_retry(
                    item.charge,
                    &item.request.custom_id,
                    &mut item.retry,
                    item.attempts,
                    sent,
                    &mut retry,
                );
                match planned {
                    Some(at) => {
                        self.delayed.push(Delayed { at, item });
                        true
                    }
                    None => self.finish(item, Err(retry.error), latency).await,
                }
            }
        }
    }

    async fn finish(
        &mut self,
        item: Box<Item>,
        outcome: Result<crate::outcome::Success, RequestError>,
        latency: Duration,
    ) -> bool {
        let error_kind: Option<ErrorKind> = outcome.as_ref().err().map(|e| e.kind);
        if item.attempts > 0 {
            self.in_flight.finished(item.request.tag);
        }
        self.inner
            .settle_spend(item.reserved, outcome.as_ref().ok().and_then(|s| s.cost));
        self.inner.emit(Event::Finished {
            custom_id: &item.request.custom_id,
            tag: item.request.tag,
            error: error_kind,
        });
        let result = BatchResult {
            custom_id: item.request.custom_id,
            tag: item.request.tag,
            outcome,
            attempts: item.attempts,
            latency,
        };
        let (now, halted) = self.tripwire.on_result(result);
        if halted {
            self.publish_halt();
        }
        for result in now {
            if !self.deliver(result).await {
                return false;
            }
        }
        true
    }

    /// Hands a final result to the results stream; false if the stream is gone.
    async fn deliver(&mut self, result: BatchResult) -> bool {
        if let Err(e) = &result.outcome {
            self.inner.stats().record_failure(e.kind);
        }
        self.results.send(result).await.is_ok()
    }

    /// Publishes why the spend cap stopped admission and drains: requests in flight
    /// finish, the rest stay pending.
    fn publish_cap_stop(&mut self, stop: CapStop) {
        self.inner.emit(Event::CapReached { stop: &stop });
        *self.cap.lock().unwrap_or_else(|e| e.into_inner()) = Some(stop);
        self.stop.cancel();
    }

    /// Makes the tripwire's halt visible and stops sending: requests in flight finish,
    /// the rest stay pending.
    fn publish_halt(&mut self) {
        let Some(halt) = self.tripwire.halted().cloned() else {
            return;
        };
        let reason = halt.reason;
        *self.halt.lock().unwrap_or_else(|e| e.into_inner()) = Some(halt);
        self.inner.emit(Event::Halted { reason });
        self.stop.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Endpoint;

    fn item(priority: i32, seq: u64, attempts: u32) -> Box<Item> {
        let request = Request::new(
            format!("r{seq}"),
            Endpoint::ChatCompletions,
            &serde_json::json!({}),
        )
        .with_priority(priority);
        let rank = rank(priority, seq, None);
        Box::new(Item {
            request,
            seq,
            rank,
            charge: Charge::default(),
            reserved: 0.0,
            attempts,
            retry: RetryState::default(),
        })
    }

    #[test]
    fn ready_queue_orders_by_priority_then_input_order_and_retries_keep_theirs() {
        let mut ready = BinaryHeap::new();
        ready.push(Ready(item(0, 1, 0)));
        ready.push(Ready(item(0, 2, 0)));
        ready.push(Ready(item(10, 5, 0)));
        // A retry of an early high-priority request comes back after later ones arrived.
        ready.push(Ready(item(10, 3, 2)));
        ready.push(Ready(item(-10, 0, 0)));
        let order: Vec<u64> = std::iter::from_fn(|| ready.pop().map(|r| r.0.seq)).collect();
        assert_eq!(order, vec![3, 5, 1, 2, 0]);
    }

    #[test]
    fn aging_lets_an_old_low_request_pass_a_stream_of_newer_high_ones() {
        // One level per 10 requests: a low request (-10) is overtaken by high ones (+10)
        // arriving within 200 requests after it, and goes first after that.
        let low = rank(-10, 0, Some(10));
        assert!(rank(10, 150, Some(10)) > low);
        assert!(rank(10, 250, Some(10)) < low);
        // Without aging, high always goes first.
        assert!(rank(10, u64::MAX / 2, None) > rank(-10, 0, None));
        assert!(rank(0, 1, None) > rank(0, 2, None), "FIFO within a class");
    }
}
