//! Flags that describe a client, checked into one [`ClientConfig`] before anything is
//! built from it (the way ripgrep separates parsing flags from building the searcher).
//! `run` builds its client from it; `demo` fills one in for the simulator; `plan` reads
//! the same limit and price flags to say what a run would do.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use sluice::cost::{PriceTable, SpendCap};
use sluice::limits::{Algorithm, Budget};
use sluice::{
    ApiKey, AuthStyle, Backoff, Client, Limits, Observer, RetryPolicy, StopEarly, is_secret_header,
};

use super::usage;
use super::values::{self, ConcurrencyArg, ModelLimitArg, RateArg};

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
    /// Limits for one model, admitted apart from the rest (repeatable):
    /// `MODEL=rpm:N,tpm:M`, each `N`/`M` a number or `auto`.
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
    /// Seconds of the per-minute budgets that may be spent at once [default: 0.5, and the
    /// opening burst may use what the server's first answer states remains; given
    /// explicitly, this bound holds from the first request].
    #[arg(long, value_parser = values::seconds)]
    burst_secs: Option<Duration>,
}

impl LimitArgs {
    fn limits(&self, rpm: Option<RateArg>, tpm: Option<RateArg>) -> Limits {
        let budget = |rate: Option<RateArg>| match rate {
            None => Budget::Unlimited,
            Some(r) if r.auto => Budget::Auto { ceiling: r.limit },
            Some(r) => r.limit.into(),
        };
        Limits {
            rpm: budget(rpm),
            tpm: budget(tpm),
            burst: self.burst_secs.unwrap_or(Duration::from_millis(500)),
            opening_burst: self.burst_secs.is_none(),
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
    /// The API's base URL.
    #[arg(
        long,
        env = "OPENAI_BASE_URL",
        default_value = "https://api.openai.com/v1"
    )]
    pub base_url: String,
    /// Environment variable that holds the API key.
    #[arg(long, default_value = "OPENAI_API_KEY", value_name = "NAME")]
    pub api_key_env: String,
    /// Send no key: for a local server that needs none. Without it, a missing key is an
    /// error before anything is sent.
    #[arg(long)]
    no_auth: bool,
    /// How the key is sent.
    #[arg(long, value_enum, default_value_t = AuthArg::Bearer)]
    auth: AuthArg,
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
}

/// A checked client configuration: everything a [`Client`] is built from.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub base_url: String,
    pub api_key: Option<ApiKey>,
    pub auth_style: AuthStyle,
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
            base_url: base_url.into(),
            api_key: None,
            auth_style: AuthStyle::Bearer,
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
        limits: &LimitArgs,
        cost: &CostArgs,
    ) -> anyhow::Result<Self> {
        let mut config = ClientConfig::local(&server.base_url, limits.concurrency);
        config.auth_style = match server.auth {
            AuthArg::Bearer => AuthStyle::Bearer,
            AuthArg::ApiKey => AuthStyle::ApiKeyHeader,
        };
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
        match std::env::var(&server.api_key_env).map(|k| k.trim().to_owned()) {
            Ok(key) if !key.is_empty() && !server.no_auth => {
                config.api_key = Some(ApiKey::new(key));
            }
            _ if server.no_auth || credential_header => {}
            _ => usage!(
                "no API key: set {} (or name another variable with --api-key-env), or pass --no-auth \
                 for a server that needs none",
                server.api_key_env
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
        self.limits = limits.limits(limits.rpm, limits.tpm);
        self.model_limits = limits
            .model_limits
            .iter()
            .map(|m| (m.model.clone(), limits.limits(m.rpm, m.tpm)))
            .collect();
        self.priority_aging = limits.priority_aging;
        self.concurrency = limits.concurrency;
    }

    /// The client, reporting its events to `observer`.
    pub fn build(&self, observer: Observer) -> anyhow::Result<Client> {
        let mut builder = Client::builder()
            .observer(observer)
            .base_url(&self.base_url)
            .limits(self.limits)
            .retry(self.retry)
            .max_response_bytes(self.max_response_bytes)
            .stop_early(self.stop_early)
            .auth_style(self.auth_style)
            .prices(self.prices.clone());
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
