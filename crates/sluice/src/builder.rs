//! [`ClientBuilder`]: every setting of a [`Client`], checked when it is built.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::SmallRng;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::Client;
use crate::binding::SharedBinding;
use crate::cost::{PriceTable, SpendCap};
use crate::engine::Route;
use crate::engine::{AdaptiveConcurrency, Gate, Inner};
use crate::error::ConfigError;
use crate::events::Observer;
use crate::fleet::EndpointSpec;
use crate::halt::StopEarly;
use crate::limits::{Admission, Limits};
use crate::redact::Redactor;
use crate::retry::{RetryBudget, RetryPolicy};
use crate::stats::Stats;
use crate::transport::{
    ApiKey, AuthStyle, HttpService, Provider, Transport, TransportConfig, is_secret_header,
    sends_503_for_overload,
};

/// How many requests may be in flight at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Concurrency {
    /// Exactly this many at most.
    Fixed(NonZeroUsize),
    /// Found from latency (for servers that queue rather than refuse), never above
    /// `ceiling`; see [`crate::limits::ConcurrencyController`].
    Auto {
        /// The most it may reach.
        ceiling: NonZeroUsize,
    },
}

impl Concurrency {
    /// The most requests in flight it allows: the fixed number, or the ceiling.
    pub fn most(self) -> NonZeroUsize {
        match self {
            Concurrency::Fixed(n) | Concurrency::Auto { ceiling: n } => n,
        }
    }
}

impl Default for Concurrency {
    /// 64 at once.
    fn default() -> Self {
        Concurrency::Fixed(NonZeroUsize::new(64).unwrap_or(NonZeroUsize::MIN))
    }
}

/// Builds a [`Client`].
#[derive(Clone, Default)]
pub struct ClientBuilder {
    transport: TransportConfig,
    limits: Limits,
    concurrency: Concurrency,
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
    endpoints: Vec<EndpointSpec>,
    overload_503: Option<bool>,
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
    /// The key and the base URL from where the provider's own SDK reads them: for OpenAI
    /// `OPENAI_API_KEY` and `OPENAI_BASE_URL` (if set), for Anthropic `ANTHROPIC_API_KEY`
    /// and `ANTHROPIC_BASE_URL` (see [`Provider::key_env`]); set the provider first. Fails
    /// when the key's variable is not set.
    pub fn from_env(self) -> Result<Self, ConfigError> {
        let provider = self.transport.provider;
        let key = std::env::var(provider.key_env())
            .ok()
            .filter(|k| !k.trim().is_empty())
            .ok_or(ConfigError::MissingEnv(provider.key_env()))?;
        let builder = self.api_key(ApiKey::new(key));
        let url = provider.base_url_env().and_then(|v| std::env::var(v).ok());
        Ok(match url {
            Some(url) if !url.trim().is_empty() => builder.base_url(url.trim()),
            _ => builder,
        })
    }

    /// The API's base URL: ending in `/v1` for OpenAI-compatible servers (default
    /// `https://api.openai.com/v1`), the host for Anthropic (default
    /// `https://api.anthropic.com`), the deployment's URL for Azure.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.transport.base_url = Some(url.into());
        self
    }

    /// The dialect the server speaks (default [`Provider::OpenAi`]): where each
    /// endpoint's URL is, how the key is sent, the headers it requires, and the default
    /// base URL.
    pub fn provider(mut self, provider: Provider) -> Self {
        self.transport.provider = provider;
        self
    }

    /// The API key.
    pub fn api_key(mut self, key: ApiKey) -> Self {
        self.transport.api_key = Some(key);
        self
    }

    /// How the key is sent (default: as the provider wants it, `Authorization: Bearer` for
    /// OpenAI).
    pub fn auth_style(mut self, style: AuthStyle) -> Self {
        self.transport.auth = Some(style);
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
        self.concurrency = Concurrency::Fixed(n);
        self
    }

    /// The concurrency as a [`Concurrency`] value (what [`ClientBuilder::concurrency`] and
    /// [`ClientBuilder::concurrency_auto`] set).
    pub fn concurrency_budget(mut self, c: Concurrency) -> Self {
        self.concurrency = c;
        self
    }

    /// Finds the concurrency instead (for servers that queue rather than refuse): starts at
    /// 8, follows latency (see [`crate::limits::ConcurrencyController`]), never above `max`.
    pub fn concurrency_auto(mut self, max: NonZeroUsize) -> Self {
        self.concurrency = Concurrency::Auto { ceiling: max };
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
    /// [`crate::ErrorKind::ResponseTooLarge`] without being held in memory.
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
    /// [`crate::BatchRun::cap_stop`], and [`Client::send`] fails with
    /// [`crate::ErrorKind::SpendCap`].
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

    /// Sends to several endpoints as one ([`crate::fleet`]): each request to one that
    /// serves its model, the one with the most free capacity first among those whose own
    /// budgets admit it. Each endpoint's own limits and concurrency then apply, in place of
    /// the client's [`ClientBuilder::limits`], per-model limits and concurrency; headers,
    /// timeouts and the retry policy are shared. An in-memory
    /// [`ClientBuilder::service`] serves every endpoint.
    pub fn endpoints(mut self, endpoints: Vec<EndpointSpec>) -> Self {
        self.endpoints = endpoints;
        self
    }

    /// Whether the server's bare 503s mean overload, slowing everyone as a 529 does
    /// (Together and Fireworks answer 503 when overloaded, 429 only above an account's
    /// rate). Default: known from the base URL's host
    /// ([`crate::transport::sends_503_for_overload`]); elsewhere a 503 is retried alone
    /// unless its body says the server is overloaded.
    pub fn overload_503(mut self, on: bool) -> Self {
        self.overload_503 = Some(on);
        self
    }

    /// Called for every [`crate::Event`].
    pub fn observer(mut self, observer: Observer) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Builds the client (and its connection pool).
    pub fn build(self) -> Result<Client, ConfigError> {
        if self.endpoints.len() > 64 {
            return Err(ConfigError::TooManyEndpoints(self.endpoints.len()));
        }
        let (concurrency, adaptive_concurrency) = match self.concurrency {
            _ if !self.endpoints.is_empty() => {
                let sum = self
                    .endpoints
                    .iter()
                    .map(|e| e.concurrency.most().get())
                    .sum();
                (NonZeroUsize::new(sum).unwrap_or(NonZeroUsize::MIN), false)
            }
            Concurrency::Fixed(n) => (n, false),
            Concurrency::Auto { ceiling } => (ceiling, true),
        };
        let mut transport = self.transport;
        transport.pool_size = concurrency.get();
        let mut redactor = Redactor::default();
        let keys = self.endpoints.iter().map(|e| e.api_key.as_ref());
        for key in std::iter::once(transport.api_key.as_ref())
            .chain(keys)
            .flatten()
        {
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
        let adaptive =
            adaptive_concurrency.then(|| AdaptiveConcurrency::start(concurrency.get(), &permits));
        let now = Instant::now();
        let rng = match self.seed {
            Some(seed) => SmallRng::seed_from_u64(seed),
            None => SmallRng::from_os_rng(),
        };
        let first_endpoint_gate = 1 + self.model_limits.len();
        let routes = if self.endpoints.is_empty() {
            let name = transport
                .base_url
                .clone()
                .or(transport.provider.default_base_url().map(str::to_owned))
                .unwrap_or_default();
            let overload_503 = self
                .overload_503
                .unwrap_or_else(|| sends_503_for_overload(&name));
            let wire = Transport::new(&transport, self.service.clone())?;
            vec![Route::new(
                name,
                wire,
                Vec::new(),
                0,
                // The client's own permits (and its adaptive control) serve one endpoint.
                Concurrency::Fixed(concurrency),
                1.0,
                overload_503,
            )]
        } else {
            let mut routes = Vec::with_capacity(self.endpoints.len());
            for (i, e) in self.endpoints.iter().enumerate() {
                let config = TransportConfig {
                    base_url: e.base_url.clone(),
                    provider: e.provider,
                    api_key: e.api_key.clone(),
                    auth: e.auth,
                    pool_size: e.concurrency.most().get(),
                    ..transport.clone()
                };
                let wire = Transport::new(&config, self.service.clone())?;
                routes.push(Route::new(
                    e.name.clone(),
                    wire,
                    e.models.clone(),
                    first_endpoint_gate + i,
                    e.concurrency,
                    if e.weight.is_finite() && e.weight > 0.0 {
                        e.weight
                    } else {
                        1.0
                    },
                    e.overload_503.unwrap_or_else(|| {
                        e.base_url.as_deref().is_some_and(sends_503_for_overload)
                    }),
                ));
            }
            routes
        };
        Ok(Client {
            inner: Arc::new(Inner {
                routes,
                permits: Arc::new(permits),
                concurrency,
                adaptive: adaptive.map(Mutex::new),
                priority_aging: self.priority_aging,
                retry: self.retry,
                gate: Mutex::new(Gate {
                    admissions: std::iter::once(&self.limits)
                        .chain(self.model_limits.iter().map(|(_, l)| l))
                        .chain(self.endpoints.iter().map(|e| &e.limits))
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
                answered: Default::default(),
            }),
        })
    }
}
