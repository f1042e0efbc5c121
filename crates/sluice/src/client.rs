//! The library face: [`Client`] with [`Client::send`] for one call and [`Client::run`] for
//! a batch. Both go through the same admission gate, concurrency permits, retry policy and
//! statistics, so calls and batches made through one client share one set of limits.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::{Stream, StreamExt};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::batch::{BatchRun, spawn_batch};
use crate::binding::{Binding, SharedBinding};
use crate::cost::{CapStop, PriceTable, SpendCap};
use crate::describe::{keep_for_record, server_words};
use crate::error::{ConfigError, ErrorKind, RequestError};
use crate::estimate::{Estimate, inspect};
use crate::events::{Event, Observer};
use crate::halt::StopEarly;
use crate::limits::{Admission, ConcurrencyController, Limits, Refusal};
use crate::outcome::{Reported, Success, parse_usage};
use crate::redact::Redactor;
use crate::request::{Request, request_model};
use crate::retry::{RetryBudget, RetryPolicy, RetryState, Verdict, classify, retry_after_in_text};
use crate::stats::Stats;
use crate::transport::{
    ApiKey, AuthStyle, HttpService, Transport, TransportConfig, is_secret_header,
};

/// How much of an error answer's body its record keeps: enough for any provider's error
/// object, not a whole HTML page or a runaway body.
const ERROR_BODY_KEPT: usize = 64 * 1024;

/// Builds a [`Client`].
#[derive(Clone, Default)]
pub struct ClientBuilder {
    transport: TransportConfig,
    limits: Limits,
    concurrency: Option<NonZeroUsize>,
    adaptive_concurrency: bool,
    retry: RetryPolicy,
    seed: Option<u64>,
    observer: Option<Observer>,
    model_limits: Vec<(String, Limits)>,
    priority_aging: Option<u64>,
    stop_early: StopEarly,
    secrets: Vec<String>,
    prices: Option<PriceTable>,
    spend_cap: Option<SpendCap>,
    service: Option<Arc<dyn HttpService>>,
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("transport", &self.transport)
            .field("limits", &self.limits)
            .field("concurrency", &self.concurrency)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// The API's base URL, ending in `/v1` (default `https://api.openai.com/v1`).
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.transport.base_url = url.into();
        self
    }

    /// The API key.
    pub fn api_key(mut self, key: ApiKey) -> Self {
        self.transport.api_key = Some(key);
        self
    }

    /// How the key is sent (default `Authorization: Bearer`).
    pub fn auth_style(mut self, style: AuthStyle) -> Self {
        self.transport.auth = style;
        self
    }

    /// An extra header for every request.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.transport.headers.push((name.into(), value.into()));
        self
    }

    /// Requests and tokens per minute to keep within.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Requests in flight at most (default 64).
    pub fn concurrency(mut self, n: NonZeroUsize) -> Self {
        self.concurrency = Some(n);
        self.adaptive_concurrency = false;
        self
    }

    /// Finds the concurrency instead (for servers that queue rather than refuse): starts at
    /// 8, follows latency (see [`crate::limits::ConcurrencyController`]), never above `max`.
    pub fn concurrency_auto(mut self, max: NonZeroUsize) -> Self {
        self.concurrency = Some(max);
        self.adaptive_concurrency = true;
        self
    }

    /// Retry policy.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Time allowed to connect (default 10 s).
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.transport.connect_timeout = d;
        self
    }

    /// Time allowed for a whole request (default 600 s, like the OpenAI SDK).
    pub fn timeout(mut self, d: Duration) -> Self {
        self.transport.timeout = d;
        self
    }

    /// Seed for backoff jitter, for reproducible runs (default: from the OS).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Separate limits for one model: its requests are admitted against these instead of
    /// the client's (providers limit each model separately).
    pub fn model_limits(mut self, model: impl Into<String>, limits: Limits) -> Self {
        self.model_limits.push((model.into(), limits));
        self
    }

    /// Lets waiting requests gain one priority level for every `requests` that arrive after
    /// them, so a steady stream of high-priority calls cannot starve low-priority work.
    pub fn priority_aging(mut self, requests: u64) -> Self {
        self.priority_aging = Some(requests.max(1));
        self
    }

    /// The largest response body read (default 256 MiB, see
    /// [`crate::DEFAULT_MAX_RESPONSE_BYTES`]); a larger answer fails its request as
    /// [`ErrorKind::ResponseTooLarge`] without being held in memory.
    pub fn max_response_bytes(mut self, bytes: u64) -> Self {
        self.transport.max_response_bytes = bytes;
        self
    }

    /// When a batch stops by itself because it cannot succeed (default: after 3 failures
    /// of one such cause before any success, or 30 s without any connection); see
    /// [`crate::halt`].
    pub fn stop_early(mut self, policy: StopEarly) -> Self {
        self.stop_early = policy;
        self
    }

    /// One more secret to scrub from everything a server sends back (the API key and the
    /// values of credential headers are scrubbed already).
    pub fn secret(mut self, secret: impl Into<String>) -> Self {
        self.secrets.push(secret.into());
        self
    }

    /// Subscribes to events.
    /// The prices that costs are counted at [default: the built-in table].
    pub fn prices(mut self, prices: PriceTable) -> Self {
        self.prices = Some(prices);
        self
    }

    /// Stops admitting requests before spent plus reserved money would pass the cap (see
    /// [`crate::cost::SpendCap`]); a batch then drains and reports
    /// [`BatchRun::cap_stop`], and [`Client::send`] fails with
    /// [`ErrorKind::SpendCap`].
    pub fn spend_cap(mut self, cap: SpendCap) -> Self {
        self.spend_cap = Some(cap);
        self
    }

    /// Sends every request to `service` in memory instead of over HTTP: for tests, of the
    /// engine and of code built on it, that need no server and can run on paused
    /// `tokio::time`. URLs, headers, the key, timeouts and the size limit apply as over
    /// HTTP (see [`crate::transport::HttpService`]).
    pub fn service(mut self, service: impl HttpService) -> Self {
        self.service = Some(Arc::new(service));
        self
    }

    /// Called for every [`Event`].
    pub fn observer(mut self, observer: Observer) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Builds the client (and its connection pool).
    pub fn build(self) -> Result<Client, ConfigError> {
        let concurrency = self
            .concurrency
            .unwrap_or(NonZeroUsize::new(64).expect("64 is not zero"));
        let mut transport = self.transport;
        transport.pool_size = concurrency.get();
        let mut redactor = Redactor::default();
        if let Some(key) = &transport.api_key {
            redactor.add(key.expose());
        }
        for (name, value) in &transport.headers {
            if is_secret_header(name) {
                redactor.add(value);
            }
        }
        for secret in &self.secrets {
            redactor.add(secret);
        }
        let permits = Semaphore::new(concurrency.get());
        let adaptive = self.adaptive_concurrency.then(|| {
            let controller = ConcurrencyController::new(8, 1, concurrency.get());
            let current = controller.limit();
            permits.forget_permits(concurrency.get() - current);
            AdaptiveConcurrency {
                controller,
                current,
            }
        });
        let now = Instant::now();
        let rng = match self.seed {
            Some(seed) => SmallRng::seed_from_u64(seed),
            None => SmallRng::from_os_rng(),
        };
        Ok(Client {
            inner: Arc::new(Inner {
                transport: Transport::new(&transport, self.service)?,
                permits: Arc::new(permits),
                concurrency,
                adaptive: adaptive.map(Mutex::new),
                priority_aging: self.priority_aging,
                retry: self.retry,
                gate: Mutex::new(Gate {
                    admissions: std::iter::once(&self.limits)
                        .chain(self.model_limits.iter().map(|(_, l)| l))
                        .map(|l| Admission::new(l, now))
                        .collect(),
                    models: self
                        .model_limits
                        .iter()
                        .enumerate()
                        .map(|(i, (m, _))| (m.clone(), i + 1))
                        .collect(),
                    budget: RetryBudget::new(
                        self.retry.budget_ratio,
                        self.retry.budget_min_per_sec,
                        now,
                    ),
                    rng,
                    consecutive_limited: 0,
                }),
                stats: Mutex::new(Stats::default()),
                observer: self.observer,
                redactor,
                stop_early: self.stop_early,
                binding: SharedBinding::default(),
                prices: self.prices.unwrap_or_default(),
                spend: self.spend_cap.map(Mutex::new),
            }),
        })
    }
}

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

pub(crate) struct Inner {
    pub transport: Transport,
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
    controller: ConcurrencyController,
    current: usize,
}

/// A request's estimated cost and the admission (by index) it is charged to.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Charge {
    pub estimate: Estimate,
    pub gate: usize,
    /// The most it can cost in dollars, under a spend cap (`None`: its model has no price).
    pub at_most: Option<f64>,
}

/// What one attempt came to.
pub(crate) enum Attempt {
    Done(Success),
    Retry(Retryable),
    Fail(RequestError),
}

/// A failed attempt worth another.
pub(crate) struct Retryable {
    pub error: RequestError,
    /// The delay the server asked for, from any header that says it or the error's text.
    pub server_delay: Option<Duration>,
    /// A 429 rate limit (not quota).
    pub rate_limited: bool,
    /// The request limit the answer's headers state, when they also state that budget
    /// remains: a refusal while the run is far below it is not about the run's rate.
    pub headroom: Option<u64>,
}

impl Retryable {
    fn transient(error: RequestError) -> Self {
        Retryable {
            error,
            server_delay: None,
            rate_limited: false,
            headroom: None,
        }
    }
}

impl Inner {
    pub(crate) fn gate(&self) -> MutexGuard<'_, Gate> {
        // The gate's state stays usable after a panic elsewhere; there is nothing to repair.
        self.gate.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Requests holding a permit now.
    pub(crate) fn in_flight(&self) -> usize {
        let granted = match &self.adaptive {
            Some(a) => a.lock().unwrap_or_else(|e| e.into_inner()).current,
            None => self.concurrency.get(),
        };
        granted.saturating_sub(self.permits.available_permits())
    }

    /// Feeds a successful request's latency to the concurrency controller, if there is one,
    /// and grants or withdraws permits to follow it.
    pub(crate) fn concurrency_sample(&self, latency: Duration) {
        let Some(adaptive) = &self.adaptive else {
            return;
        };
        let mut a = adaptive.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(limit) = a.controller.on_sample(latency) {
            if limit > a.current {
                self.permits.add_permits(limit - a.current);
                a.current = limit;
            } else {
                // Only free permits can be withdrawn now; the rest follow at the next change.
                let withdrawn = self.permits.forget_permits(a.current - limit);
                a.current -= withdrawn;
            }
        }
    }

    pub(crate) fn stats(&self) -> MutexGuard<'_, Stats> {
        self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn emit(&self, event: Event<'_>) {
        if let Some(observer) = &self.observer {
            observer(&event);
        }
    }

    /// What admission charges a request, and which admission charges it (its model's, if
    /// that has limits of its own). Tokens are estimated only where they are limited, since
    /// estimating is the one costly thing on the hot path.
    pub(crate) fn charge(&self, request: &Request) -> Charge {
        let gate = self.gate();
        let index = if gate.models.is_empty() {
            0
        } else {
            request_model(&request.body)
                .and_then(|m| gate.models.get(m.as_ref()).copied())
                .unwrap_or(0)
        };
        let limits_tokens = gate.admissions[index].limits_tokens();
        drop(gate);
        let capped = self.spend.is_some();
        // One parse gives both the tokens and, for the cap's price, the model.
        let (estimate, model) = if limits_tokens || capped {
            let found = inspect(request.endpoint, &request.body);
            (found.estimate, found.model)
        } else {
            (Estimate::default(), String::new())
        };
        let at_most = if capped {
            self.prices.lookup(&model).map(|p| p.at_most(estimate))
        } else {
            Some(0.0)
        };
        Charge {
            // Without a token budget the estimate is for the cap alone.
            estimate: if limits_tokens {
                estimate
            } else {
                Estimate::default()
            },
            gate: index,
            at_most,
        }
    }

    /// Whether charging a request counts its tokens (a token budget or a spend cap).
    pub(crate) fn counts_tokens(&self) -> bool {
        self.spend.is_some() || self.gate().admissions.iter().any(Admission::limits_tokens)
    }

    /// Reserves what a request can cost under the spend cap, before its first attempt.
    /// Returns the dollars reserved (nothing without a cap).
    pub(crate) fn reserve(&self, charge: Charge, request: &Request) -> Result<f64, CapStop> {
        let Some(spend) = &self.spend else {
            return Ok(0.0);
        };
        let Some(amount) = charge.at_most else {
            return Err(CapStop::Unpriced {
                model: request_model(&request.body)
                    .unwrap_or_default()
                    .into_owned(),
            });
        };
        let mut spend = spend.lock().unwrap_or_else(|e| e.into_inner());
        spend.try_reserve(amount).map(|()| amount)
    }

    /// A request that reserved `reserved` ended; `cost` is what it cost, if it succeeded
    /// and its model has a price.
    pub(crate) fn settle_spend(&self, reserved: f64, cost: Option<f64>) {
        if let Some(spend) = &self.spend {
            spend
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .settle(reserved, cost.unwrap_or(0.0));
        }
    }

    /// The price of an answer: at the model the server names, else at the request's.
    fn cost_of(&self, request: &Request, reported: &Reported<'_>) -> Option<f64> {
        let price = reported
            .model
            .as_deref()
            .and_then(|m| self.prices.lookup(m))
            .or_else(|| request_model(&request.body).and_then(|m| self.prices.lookup(&m)))?;
        Some(price.cost(reported.usage))
    }

    /// Removes the secrets from bytes a server sent back.
    pub(crate) fn redact(&self, bytes: bytes::Bytes) -> bytes::Bytes {
        self.redactor.redact(bytes)
    }

    /// Sends one attempt and classifies it.
    pub(crate) async fn attempt(&self, request: &Request, attempt: u32, charge: Charge) -> Attempt {
        self.emit(Event::Sent {
            custom_id: &request.custom_id,
            tag: request.tag,
            attempt,
        });
        let reply = match self.transport.send(request).await {
            Ok(reply) => reply,
            Err(e) => {
                tracing::debug!(
                    custom_id = %request.custom_id,
                    attempt,
                    kind = %e.kind,
                    "attempt failed before an answer"
                );
                let mut error = RequestError::new(e.kind, self.redactor.redact_str(&e.message));
                error.status = e.status;
                error.body = e.prefix.map(|b| self.redact(b));
                error.attempts = attempt;
                return if e.kind.is_retryable() {
                    Attempt::Retry(Retryable::transient(error))
                } else {
                    Attempt::Fail(error)
                };
            }
        };
        {
            let in_flight = self.in_flight() as u64;
            let cap = self.concurrency.get() as u64;
            self.gate().admissions[charge.gate].observe(
                Instant::now(),
                &reply.rate,
                in_flight,
                cap,
            );
        }
        let body = self.redact(reply.body);
        let verdict = classify(reply.status, reply.should_retry, &body);
        tracing::debug!(
            custom_id = %request.custom_id,
            attempt,
            status = reply.status,
            verdict = ?verdict,
            "attempt answered"
        );
        if verdict == Verdict::Success {
            let reported = parse_usage(&body).map(|r| {
                let cost = self.cost_of(request, &r);
                (r.usage, cost)
            });
            return match reported {
                Some((usage, cost)) => Attempt::Done(Success {
                    status: reply.status,
                    request_id: reply.request_id,
                    body,
                    usage,
                    cost,
                }),
                None => {
                    let mut e = RequestError::new(
                        ErrorKind::MalformedResponse,
                        format!("HTTP {} with a body that is not JSON", reply.status),
                    );
                    e.status = Some(reply.status);
                    e.body = Some(keep_for_record(body, ERROR_BODY_KEPT));
                    e.request_id = reply.request_id;
                    e.attempts = attempt;
                    Attempt::Retry(Retryable::transient(e))
                }
            };
        }
        let left = |remaining: Option<u64>| remaining.is_none_or(|r| r > 1);
        let headroom = reply
            .rate
            .requests
            .limit
            .filter(|_| reply.rate.requests.remaining.is_some())
            .filter(|_| left(reply.rate.requests.remaining) && left(reply.rate.tokens.remaining));
        let server_delay = reply
            .retry_after
            .or_else(|| retry_after_in_text(&body).filter(|_| verdict != Verdict::Success));
        let message = self.describe(request, reply.status, reply.location.as_deref(), &body);
        let error = move |kind: ErrorKind| {
            let mut e = RequestError::new(kind, message);
            e.status = Some(reply.status);
            e.body = Some(keep_for_record(body, ERROR_BODY_KEPT));
            e.request_id = reply.request_id;
            e.attempts = attempt;
            e
        };
        match verdict {
            Verdict::Retry { kind, rate_limited } => Attempt::Retry(Retryable {
                error: error(kind),
                server_delay,
                rate_limited,
                headroom,
            }),
            Verdict::Fail(kind) => Attempt::Fail(error(kind)),
            Verdict::Success => unreachable!("handled above"),
        }
    }

    /// What an error answer says: the status, the server's own words, and what the status
    /// alone would not tell (the URL that was not found, where a redirect points).
    fn describe(
        &self,
        request: &Request,
        status: u16,
        location: Option<&str>,
        body: &[u8],
    ) -> String {
        let mut message = format!("HTTP {status}");
        if status == 404 {
            message.push_str(&format!(
                " from POST {}",
                self.transport.url(request.endpoint)
            ));
        }
        if (300..400).contains(&status) {
            message.push_str(&format!(
                " redirect to {}; redirects are not followed (the key must not go to another \
                 host): use the final URL as the base URL",
                location.unwrap_or("an unnamed place")
            ));
        }
        if let Some(words) = server_words(body) {
            message.push_str(": ");
            message.push_str(&words);
        }
        self.redactor.redact_str(&message)
    }

    /// Decides when a failed attempt goes again, or that it does not. A 429 is weighed by
    /// the gate: congestion pauses everyone (for what the server asked, or a pause that
    /// grows with consecutive refusals when it asked nothing) and lowers the rate once per
    /// episode; an isolated refusal makes only this request wait. Other failures draw on the
    /// retry budget. 429s do not count against the attempts allowed; a request is written
    /// off as rate-limited only after refusals for `max_rate_limited_wait`, or when the
    /// server asks for more than `max_retry_after`.
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
        let error = &mut r.error;
        if r.rate_limited {
            self.stats().rate_limited += 1;
        }
        // A 429 or a 529 (overloaded) may mean the rate is too high for the server now.
        let refusal = (r.rate_limited || error.status == Some(529))
            .then(|| self.gate().admissions[charge.gate].on_limited(now, sent, r.headroom));
        if r.rate_limited {
            let since = *state.limited_since.get_or_insert(now);
            let refused_for = now.saturating_duration_since(since);
            if refused_for >= policy.max_rate_limited_wait {
                error.message = format!(
                    "{}; still refused as rate-limited after {:.0} s of retries",
                    error.message,
                    refused_for.as_secs_f64()
                );
                return None;
            }
        } else {
            state.limited_since = None;
            state.errors += 1;
            if state.errors >= policy.max_attempts.get() {
                error.message = format!("{}; gave up after {attempts} attempts", error.message);
                return None;
            }
        }
        if let Some(asked) = r.server_delay
            && asked > policy.max_retry_after
        {
            error.message = format!(
                "{}; the server asked to wait {:.1} s, above the {:.0} s this run accepts",
                error.message,
                asked.as_secs_f64(),
                policy.max_retry_after.as_secs_f64()
            );
            return None;
        }
        let mut gate = self.gate();
        let jittered = policy.backoff.delay(attempts, &mut gate.rng);
        let mut delay = jittered.max(r.server_delay.unwrap_or(Duration::ZERO));
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
            Some(Refusal::Isolated) => drop(gate),
            None => {
                delay = delay.max(gate.budget.take(now));
                drop(gate);
            }
        }
        tracing::debug!(
            custom_id,
            attempt = attempts,
            kind = %error.kind,
            refusal = ?refusal,
            delay_ms = delay.as_millis() as u64,
            "retry planned"
        );
        self.emit(Event::Retrying {
            custom_id,
            attempt: attempts,
            kind: error.kind,
            delay,
        });
        Some(now + delay)
    }

    /// After a success: corrects the token budget with the prompt tokens the server
    /// counted, and lets adaptive rates grow.
    pub(crate) fn correct(&self, charge: Charge, success: &Success) {
        let mut gate = self.gate();
        let admission = &mut gate.admissions[charge.gate];
        let estimate = charge.estimate;
        if estimate.prompt > 0 || estimate.reserved_output > 0 {
            let delta = success.usage.prompt_tokens as i64 - estimate.prompt as i64;
            admission.correct_tokens(delta);
        }
        admission.on_success(Instant::now());
        gate.consecutive_limited = 0;
    }
}

/// The error for a request that can never fit the token budget.
pub(crate) fn too_large(cost: u64, limit: u64) -> RequestError {
    RequestError::new(
        ErrorKind::TooLarge,
        format!(
            "the request needs about {cost} tokens (prompt plus max_tokens times n), more than the whole \
             budget of {limit} tokens per minute; lower max_tokens or raise --tpm"
        ),
    )
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
