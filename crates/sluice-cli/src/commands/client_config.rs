//! Flags that describe a client, checked into one [`ClientConfig`] before anything is
//! built from it (the way ripgrep separates parsing flags from building the searcher).
//! `run` builds its client from it; `demo` fills one in for the simulator; `plan` reads
//! the same limit and price flags to say what a run would do.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use sluice::cost::{PriceTable, SpendCap};
use sluice::fleet::EndpointSpec;
use sluice::limits::{Algorithm, Budget};
use sluice::{
    ApiKey, AuthStyle, Backoff, Client, Limits, Observer, Provider, RetryPolicy, StopEarly,
    is_secret_header,
};

use super::usage;
use super::values::{self, ConcurrencyArg, ModelLimitArg, RateArg, Rates};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LimiterArg {
    TokenBucket,
    SlidingWindow,
}

/// Flags that shape admission: how many at once and how many a minute.
#[derive(Debug, Args)]
pub struct LimitArgs {
    /// Requests in flight at most: a number, or `auto` (`auto:N` for a ceiling; 512 by
    /// default) to follow latency, for servers that queue instead of refusing.
    #[arg(long, default_value = "64", value_parser = values::parse_concurrency)]
    pub concurrency: ConcurrencyArg,
    /// Requests per minute to keep within: a number, `auto` to find it, or `auto:N` to
    /// find it below N.
    #[arg(long, value_parser = values::parse_rate)]
    pub rpm: Option<RateArg>,
    /// Tokens per minute (prompt plus max_tokens times n): a number, `auto` or `auto:N`.
    #[arg(long, value_parser = values::parse_rate)]
    pub tpm: Option<RateArg>,
    /// Input tokens per minute (the prompt), for providers that limit input and output
    /// apart (Anthropic): a number, `auto` or `auto:N`.
    #[arg(long, value_parser = values::parse_rate)]
    pub itpm: Option<RateArg>,
    /// Output tokens per minute: max_tokens is reserved when a request is sent and what
    /// the answer did not use is given back (Anthropic counts them so): a number, `auto`
    /// or `auto:N`.
    #[arg(long, value_parser = values::parse_rate)]
    pub otpm: Option<RateArg>,
    /// Limits for one model, admitted apart from the rest (repeatable):
    /// `MODEL=rpm:N,tpm:M` (also `itpm:N`, `otpm:N`), each a number or `auto`.
    #[arg(long = "limit", value_name = "MODEL=rpm:N,tpm:M", value_parser = values::parse_model_limit)]
    pub model_limits: Vec<ModelLimitArg>,
    /// Let a waiting request gain one priority level for every N requests that arrive
    /// after it (keeps low priority from starving).
    #[arg(long, value_name = "N")]
    priority_aging: Option<u64>,
    /// Admission algorithm: a token bucket with a small burst (OpenAI), or shares of 1 s,
    /// 10 s and 60 s windows with no burst (Azure).
    #[arg(long, value_enum, default_value_t = LimiterArg::TokenBucket)]
    limiter: LimiterArg,
    /// Seconds of the per-minute budgets that may be spent at once [default: 0.5]; the
    /// bound holds from the first request.
    #[arg(long, value_parser = values::seconds)]
    burst_secs: Option<Duration>,
}

impl LimitArgs {
    /// The run's own budgets.
    pub fn rates(&self) -> Rates {
        Rates {
            rpm: self.rpm,
            tpm: self.tpm,
            itpm: self.itpm,
            otpm: self.otpm,
        }
    }

    fn limits(&self, rates: Rates) -> Limits {
        let budget = |rate: Option<RateArg>| match rate {
            None => Budget::Unlimited,
            Some(r) if r.auto => Budget::Auto { ceiling: r.limit },
            Some(r) => r.limit.into(),
        };
        Limits {
            rpm: budget(rates.rpm),
            tpm: budget(rates.tpm),
            itpm: budget(rates.itpm),
            otpm: budget(rates.otpm),
            burst: self.burst_secs.unwrap_or(Duration::from_millis(500)),
            algorithm: match self.limiter {
                LimiterArg::TokenBucket => Algorithm::TokenBucket,
                LimiterArg::SlidingWindow => Algorithm::SlidingWindow,
            },
        }
    }
}

/// Flags about money.
#[derive(Debug, Args)]
pub struct CostArgs {
    /// A TOML file of prices that override and extend the built-in table:
    /// `[models."NAME"]` with `input`, `output` and optional `cached_input`, in dollars
    /// per million tokens (see README, "Cost").
    #[arg(long, value_name = "FILE")]
    pub prices: Option<PathBuf>,
    /// Stop admitting requests once dollars spent (earlier runs of this output included)
    /// plus those reserved by requests in flight would pass this; drain, write everything
    /// and exit 7. Run again with a higher cap to go on.
    #[arg(long, value_name = "DOLLARS", value_parser = values::dollars)]
    pub max_cost: Option<f64>,
}

impl CostArgs {
    /// The built-in prices with `--prices` applied.
    pub fn table(&self) -> anyhow::Result<PriceTable> {
        let mut table = PriceTable::builtin();
        if let Some(path) = &self.prices
            && let Err(e) = table.merge_file(path)
        {
            usage!("{e}");
        }
        Ok(table)
    }
}

/// Flags about the server and how to talk to it.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// The dialect the server speaks: openai (and every OpenAI-compatible server), anthropic
    /// (the Messages API: x-api-key, anthropic-version) or azure (a deployment URL,
    /// api-key). Default: anthropic when the input's first line is an Anthropic request
    /// (`params` lines, or url /v1/messages), openai otherwise.
    #[arg(long, value_parser = parse_provider)]
    pub provider: Option<Provider>,
    /// Several endpoints as one (TOML: base URL, provider, key variable, models, limits,
    /// concurrency and weight of each; see README, "Several endpoints"). Each request goes
    /// to an endpoint serving its model with the most room; an endpoint that keeps failing
    /// is taken out for a while. Limits and concurrency then come from the file.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["provider", "base_url", "api_key_env", "no_auth", "auth"])]
    pub endpoints: Option<PathBuf>,
    /// The API's base URL [default: $OPENAI_BASE_URL or https://api.openai.com/v1; for
    /// anthropic $ANTHROPIC_BASE_URL or https://api.anthropic.com; for azure the
    /// deployment's URL with ?api-version=..., which must be given].
    #[arg(long)]
    pub base_url: Option<String>,
    /// Environment variable that holds the API key [default: OPENAI_API_KEY;
    /// ANTHROPIC_API_KEY for anthropic; AZURE_OPENAI_API_KEY for azure].
    #[arg(long, value_name = "NAME")]
    pub api_key_env: Option<String>,
    /// The server's bare 503s mean it is overloaded: slow everyone down as after a 529
    /// (known without this for Together and Fireworks; elsewhere a 503 is retried alone
    /// unless its body says the server is overloaded).
    #[arg(long)]
    overload_503: bool,
    /// Send no key: for a local server that needs none. Without it, a missing key is an
    /// error before anything is sent.
    #[arg(long)]
    no_auth: bool,
    /// How the key is sent [default: as the provider wants it: bearer for openai,
    /// x-api-key for anthropic, api-key for azure].
    #[arg(long, value_enum)]
    auth: Option<AuthArg>,
    /// Extra header for every request, as 'Name: value' (repeatable). Values of credential
    /// headers (Authorization, anything with key, token or secret in its name) are
    /// redacted like the key.
    #[arg(long = "header", value_name = "NAME: VALUE")]
    headers: Vec<String>,
    /// Attempts per request, the first included, for errors worth retrying (5xx,
    /// timeouts, broken connections). Rate-limit refusals (429) do not count: see
    /// --max-rate-limited-wait.
    #[arg(long, default_value_t = std::num::NonZeroU32::new(8).expect("8 > 0"))]
    max_attempts: std::num::NonZeroU32,
    /// Seconds a request may keep being refused as rate-limited (429) before it is
    /// written off as rate_limited.
    #[arg(long, default_value = "900", value_parser = values::positive_seconds)]
    max_rate_limited_wait: Duration,
    /// First retry waits up to this many seconds (doubling each time, with full jitter).
    #[arg(long, default_value = "0.5", value_parser = values::positive_seconds)]
    backoff_base: Duration,
    /// No retry waits longer than this many seconds of backoff.
    #[arg(long, default_value = "60", value_parser = values::positive_seconds)]
    backoff_max: Duration,
    /// A server asking to wait longer than this many seconds fails the request instead.
    #[arg(long, default_value = "120", value_parser = values::seconds)]
    max_retry_after: Duration,
    /// Seconds allowed to connect.
    #[arg(long, default_value = "10", value_parser = values::positive_seconds)]
    connect_timeout: Duration,
    /// Seconds allowed for a whole request.
    #[arg(long, default_value = "600", value_parser = values::positive_seconds)]
    timeout: Duration,
    /// The largest response body read (a number of bytes, or 256MiB, 64KiB...); a larger
    /// answer fails its request as response_too_large without being held in memory.
    #[arg(long, default_value = "256MiB", value_parser = values::bytes)]
    max_response_bytes: u64,
    /// Seconds every attempt may fail to connect, before any answer, until the run stops
    /// as unreachable (exit 4; nothing is lost, run again to resume).
    #[arg(long, default_value = "30", value_parser = values::positive_seconds)]
    pub unreachable_timeout: Duration,
    /// Seed for retry jitter (reproducible runs).
    #[arg(long)]
    seed: Option<u64>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum AuthArg {
    /// `Authorization: Bearer KEY` (OpenAI and most compatible servers).
    Bearer,
    /// `api-key: KEY` (Azure OpenAI).
    ApiKey,
    /// `x-api-key: KEY` (Anthropic).
    XApiKey,
}

fn parse_provider(s: &str) -> Result<Provider, String> {
    s.parse()
}

/// Where the server is and how to reach it, once the provider is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The dialect.
    pub provider: Provider,
    /// The base URL.
    pub base_url: String,
    /// The variable the key is read from.
    pub key_env: String,
}

impl ServerArgs {
    /// The provider (the flag, else what the input says, else OpenAI), its base URL and
    /// its key's variable.
    pub fn endpoint(&self, input: Option<&std::path::Path>) -> anyhow::Result<Endpoint> {
        let provider = self
            .provider
            .or_else(|| input.and_then(sluice::input::provider_of_input))
            .unwrap_or_default();
        let from_env = provider
            .base_url_env()
            .and_then(|v| std::env::var(v).ok())
            .map(|u| u.trim().to_owned())
            .filter(|u| !u.is_empty());
        let base_url = match (&self.base_url, from_env, provider.default_base_url()) {
            (Some(url), _, _) => url.clone(),
            (None, Some(url), _) => url,
            (None, None, Some(url)) => url.to_owned(),
            (None, None, None) => usage!(
                "--provider {provider} needs --base-url: the deployment's URL, for example \
                 https://NAME.openai.azure.com/openai/deployments/DEPLOYMENT?api-version=2024-10-21"
            ),
        };
        Ok(Endpoint {
            provider,
            base_url,
            key_env: self
                .api_key_env
                .clone()
                .unwrap_or_else(|| provider.key_env().to_owned()),
        })
    }
}

/// A checked client configuration: everything a [`Client`] is built from.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Several endpoints, from `--endpoints`; empty: the one of `base_url`.
    pub endpoints: Vec<EndpointSpec>,
    /// The server's bare 503s mean overload (`--overload-503`); `None`: known by host.
    pub overload_503: Option<bool>,
    pub base_url: String,
    pub provider: Provider,
    /// The variable the key was read from, for advice.
    pub key_env: String,
    pub api_key: Option<ApiKey>,
    pub auth_style: Option<AuthStyle>,
    pub headers: Vec<(String, String)>,
    pub limits: Limits,
    pub model_limits: Vec<(String, Limits)>,
    pub concurrency: ConcurrencyArg,
    pub priority_aging: Option<u64>,
    pub retry: RetryPolicy,
    pub connect_timeout: Option<Duration>,
    pub timeout: Option<Duration>,
    pub max_response_bytes: u64,
    pub stop_early: StopEarly,
    pub seed: Option<u64>,
    pub prices: PriceTable,
    pub spend_cap: Option<SpendCap>,
}

impl ClientConfig {
    /// A configuration with the library's defaults for a server at `base_url` that needs
    /// no key.
    pub fn local(base_url: impl Into<String>, concurrency: ConcurrencyArg) -> Self {
        ClientConfig {
            endpoints: Vec::new(),
            overload_503: None,
            base_url: base_url.into(),
            provider: Provider::OpenAi,
            key_env: Provider::OpenAi.key_env().to_owned(),
            api_key: None,
            auth_style: None,
            headers: Vec::new(),
            limits: Limits::default(),
            model_limits: Vec::new(),
            concurrency,
            priority_aging: None,
            retry: RetryPolicy::default(),
            connect_timeout: None,
            timeout: None,
            max_response_bytes: sluice::DEFAULT_MAX_RESPONSE_BYTES,
            stop_early: StopEarly::default(),
            seed: None,
            prices: PriceTable::builtin(),
            spend_cap: None,
        }
    }

    /// Checks the flags of a run: headers, the key, backoff bounds, the prices file and
    /// the spend cap (with what earlier runs spent, `spent_before`, set later).
    pub fn from_flags(
        server: &ServerArgs,
        endpoint: Endpoint,
        limits: &LimitArgs,
        cost: &CostArgs,
    ) -> anyhow::Result<Self> {
        let mut config = ClientConfig::local(&endpoint.base_url, limits.concurrency);
        config.provider = endpoint.provider;
        config.overload_503 = server.overload_503.then_some(true);
        config.key_env = endpoint.key_env;
        config.auth_style = server.auth.map(|a| match a {
            AuthArg::Bearer => AuthStyle::Bearer,
            AuthArg::ApiKey => AuthStyle::ApiKeyHeader,
            AuthArg::XApiKey => AuthStyle::XApiKey,
        });
        let mut credential_header = false;
        for header in &server.headers {
            let Some((name, value)) = header.split_once(':') else {
                usage!("--header `{header}` must look like 'Name: value'");
            };
            credential_header |= is_secret_header(name);
            config
                .headers
                .push((name.trim().to_owned(), value.trim().to_owned()));
        }
        if let Some(path) = &server.endpoints {
            let r = limits.rates();
            if r.rpm.is_some()
                || r.tpm.is_some()
                || r.itpm.is_some()
                || r.otpm.is_some()
                || !limits.model_limits.is_empty()
            {
                usage!(
                    "with --endpoints, each endpoint's limits come from {}: set rpm, tpm, itpm \
                     and otpm there instead of --rpm, --tpm, --itpm, --otpm and --limit",
                    path.display()
                );
            }
            config.endpoints = match sluice::fleet::file::load(path) {
                Ok(specs) => specs,
                Err(e) => usage!("{e}"),
            };
            // How budgets are kept (--burst-secs, --limiter) applies to every endpoint.
            let shape = limits.limits(Rates::default());
            for e in &mut config.endpoints {
                e.limits.burst = shape.burst;
                e.limits.algorithm = shape.algorithm;
            }
        }
        match std::env::var(&config.key_env).map(|k| k.trim().to_owned()) {
            _ if !config.endpoints.is_empty() => {}
            Ok(key) if !key.is_empty() && !server.no_auth => {
                config.api_key = Some(ApiKey::new(key));
            }
            _ if server.no_auth || credential_header => {}
            _ => usage!(
                "no API key: set {} (or name another variable with --api-key-env), or pass --no-auth \
                 for a server that needs none",
                config.key_env
            ),
        }
        let Ok(backoff) = Backoff::new(server.backoff_base, server.backoff_max) else {
            usage!(
                "--backoff-max ({} s) must be at least --backoff-base ({} s)",
                server.backoff_max.as_secs_f64(),
                server.backoff_base.as_secs_f64()
            );
        };
        config.retry = RetryPolicy {
            max_attempts: server.max_attempts,
            backoff,
            max_retry_after: server.max_retry_after,
            max_rate_limited_wait: server.max_rate_limited_wait,
            ..RetryPolicy::default()
        };
        config.connect_timeout = Some(server.connect_timeout);
        config.timeout = Some(server.timeout);
        config.max_response_bytes = server.max_response_bytes;
        config.stop_early = StopEarly::default().unreachable_after(server.unreachable_timeout);
        config.seed = server.seed;
        config.apply_limits(limits);
        config.prices = cost.table()?;
        config.spend_cap = cost.max_cost.map(|cap| SpendCap::new(cap, 0.0));
        Ok(config)
    }

    /// The admission flags: budgets, per-model budgets, aging, concurrency.
    pub fn apply_limits(&mut self, limits: &LimitArgs) {
        self.limits = limits.limits(limits.rates());
        self.model_limits = limits
            .model_limits
            .iter()
            .map(|m| (m.model.clone(), limits.limits(m.rates)))
            .collect();
        self.priority_aging = limits.priority_aging;
        self.concurrency = limits.concurrency;
    }

    /// The client, reporting its events to `observer`.
    pub fn build(&self, observer: Observer) -> anyhow::Result<Client> {
        let mut builder = Client::builder()
            .observer(observer)
            .provider(self.provider)
            .base_url(&self.base_url)
            .limits(self.limits)
            .retry(self.retry)
            .max_response_bytes(self.max_response_bytes)
            .stop_early(self.stop_early)
            .prices(self.prices.clone());
        if let Some(style) = self.auth_style {
            builder = builder.auth_style(style);
        }
        if !self.endpoints.is_empty() {
            builder = builder.endpoints(self.endpoints.clone());
        }
        if let Some(on) = self.overload_503 {
            builder = builder.overload_503(on);
        }
        for (name, value) in &self.headers {
            builder = builder.header(name, value);
        }
        if let Some(key) = &self.api_key {
            builder = builder.api_key(key.clone());
        }
        if let Some(d) = self.connect_timeout {
            builder = builder.connect_timeout(d);
        }
        if let Some(d) = self.timeout {
            builder = builder.timeout(d);
        }
        if let Some(seed) = self.seed {
            builder = builder.seed(seed);
        }
        if let Some(n) = self.priority_aging {
            builder = builder.priority_aging(n);
        }
        if let Some(cap) = &self.spend_cap {
            builder = builder.spend_cap(cap.clone());
        }
        builder = if self.concurrency.auto {
            builder.concurrency_auto(self.concurrency.max)
        } else {
            builder.concurrency(self.concurrency.max)
        };
        for (model, limits) in &self.model_limits {
            builder = builder.model_limits(model.clone(), *limits);
        }
        match builder.build() {
            Ok(client) => Ok(client),
            Err(e) => usage!("{e}"),
        }
    }
}
