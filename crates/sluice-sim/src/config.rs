//! What a simulator is asked to be: limits, latency, capacity, faults and validation.
//!
//! Everything is validated once, in [`SimBuilder::build`], so a running simulator never
//! meets an impossible setting (a probability above 1, a jitter of 300 %).

use std::collections::BTreeSet;
use std::num::NonZeroU64;
use std::str::FromStr;
use std::time::Duration;

use crate::faults::{Fault, FaultPlan, FaultWindow};

/// Errors in a simulator configuration.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    /// A fault probability outside `0..=1`.
    #[error("fault `{fault}` has probability {probability}; it must be between 0 and 1")]
    BadProbability { fault: Fault, probability: f64 },
    /// The fault probabilities add up to more than 1.
    #[error("fault probabilities add up to {0}; their sum must be at most 1")]
    FaultSumTooLarge(f64),
    /// Jitter outside `0..=1`.
    #[error("jitter {0} must be between 0 and 1 (a fraction of the latency)")]
    BadJitter(f64),
    /// A burst window that is not a positive number of seconds of at most one minute.
    #[error("burst window {0} s must be above 0 and at most 60")]
    BadBurst(f64),
    /// A retry-after prefix that does not make a header name.
    #[error("`{0}-retry-after` is not a valid header name")]
    BadPrefix(String),
}

/// Latency model: time to first token plus time per output token, with relative jitter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latency {
    /// Time to first token.
    pub ttft: Duration,
    /// Time per generated token after the first.
    pub per_token: Duration,
    /// Relative jitter: each latency is scaled by a uniform factor in `1 ± jitter`.
    pub jitter: f64,
}

impl Latency {
    /// No latency at all: answers as fast as the machine can.
    pub const ZERO: Latency = Latency {
        ttft: Duration::ZERO,
        per_token: Duration::ZERO,
        jitter: 0.0,
    };

    /// Every answer after exactly `ttft`, however long: for tests that count time.
    pub const fn fixed(ttft: Duration) -> Latency {
        Latency {
            ttft,
            per_token: Duration::ZERO,
            jitter: 0.0,
        }
    }

    /// True when no request ever waits.
    pub fn is_zero(&self) -> bool {
        self.ttft.is_zero() && self.per_token.is_zero()
    }
}

/// Rate limits enforced like OpenAI's: per minute, refilled continuously, over sub-minute slices.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimits {
    /// Requests per minute, if limited.
    pub rpm: Option<NonZeroU64>,
    /// Tokens per minute, if limited (prompt tokens plus `max_tokens` times `n`).
    pub tpm: Option<NonZeroU64>,
    /// Input tokens per minute, if limited (prompt tokens), as Anthropic limits them.
    pub itpm: Option<NonZeroU64>,
    /// Output tokens per minute, if limited: `max_tokens` is charged at admission and
    /// what the answer did not use is given back, as Anthropic counts them.
    pub otpm: Option<NonZeroU64>,
    /// The length of the slice over which a minute's budget is enforced: at most
    /// `limit * burst / 60` may be spent at once. One second by default, so a 60,000 TPM
    /// key acts as 1,000 tokens a second, as OpenAI's do.
    pub burst: Duration,
    /// How the per-minute budget is counted.
    pub window: Window,
    /// Another client's requests a minute, counted against the request limit.
    pub external_load: u64,
    /// When that other client starts, from the simulator's start (zero: at once): a
    /// limit that shrinks mid-run, as when another job on the same key begins.
    pub external_from: Duration,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            rpm: None,
            tpm: None,
            itpm: None,
            otpm: None,
            burst: Duration::from_secs(1),
            window: Window::Rolling,
            external_load: 0,
            external_from: Duration::ZERO,
        }
    }
}

/// How a per-minute budget is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Window {
    /// Refilled continuously and enforced over sub-minute slices, as OpenAI does.
    #[default]
    Rolling,
    /// Counted per clock minute (from the simulator's start) and reset at once when the
    /// minute turns, as many gateways do: a whole minute's burst passes, then nothing
    /// until the next minute.
    FixedMinute,
}

impl FromStr for Window {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "rolling" => Ok(Window::Rolling),
            "fixed-minute" => Ok(Window::FixedMinute),
            other => Err(format!(
                "unknown window `{other}`; expected rolling or fixed-minute"
            )),
        }
    }
}

/// How the simulator answers when the key's money is gone or the rate is spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QuotaMode {
    /// Normal operation.
    #[default]
    Available,
    /// Every request gets 429 `insufficient_quota`, which a client must not retry.
    Exhausted,
}

/// The models the simulator accepts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ModelPolicy {
    /// Accept any model name.
    #[default]
    Any,
    /// Accept only these names; others get 404 `model_not_found`, as OpenAI answers.
    Only(BTreeSet<String>),
}

impl ModelPolicy {
    /// Whether `model` may be used.
    pub fn accepts(&self, model: &str) -> bool {
        match self {
            ModelPolicy::Any => true,
            ModelPolicy::Only(names) => names.contains(model),
        }
    }
}

/// A validated simulator configuration. Build one with [`SimBuilder`].
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub(crate) limits: RateLimits,
    pub(crate) send_headers: bool,
    pub(crate) retry_after_prefix: Option<String>,
    pub(crate) quota: QuotaMode,
    pub(crate) latency: Latency,
    pub(crate) max_concurrency: Option<usize>,
    pub(crate) faults: FaultPlan,
    pub(crate) fault_windows: Vec<FaultWindow>,
    pub(crate) seed: u64,
    pub(crate) models: ModelPolicy,
    pub(crate) max_body_bytes: usize,
    pub(crate) output_tokens: Option<u32>,
    pub(crate) trickle_interval: Duration,
    pub(crate) record_ids: bool,
    pub(crate) api_key: Option<String>,
}

impl SimConfig {
    /// The rate limits in force.
    pub fn limits(&self) -> RateLimits {
        self.limits
    }
}

/// Builds a [`crate::Sim`]. Every setting has a default that gives an instant, unlimited,
/// fault-free OpenAI-compatible server.
#[derive(Debug, Clone)]
pub struct SimBuilder {
    config: SimConfig,
    fault_list: Vec<(Fault, f64)>,
}

impl Default for SimBuilder {
    fn default() -> Self {
        SimBuilder {
            config: SimConfig {
                limits: RateLimits::default(),
                send_headers: true,
                retry_after_prefix: None,
                quota: QuotaMode::Available,
                latency: Latency::ZERO,
                max_concurrency: None,
                faults: FaultPlan::default(),
                fault_windows: Vec::new(),
                seed: 0,
                models: ModelPolicy::Any,
                max_body_bytes: 32 * 1024 * 1024,
                output_tokens: None,
                trickle_interval: Duration::from_millis(20),
                record_ids: true,
                api_key: None,
            },
            fault_list: Vec::new(),
        }
    }
}

impl SimBuilder {
    /// Requests per minute; `None` for unlimited.
    pub fn rpm(mut self, rpm: Option<NonZeroU64>) -> Self {
        self.config.limits.rpm = rpm;
        self
    }

    /// Tokens per minute; `None` for unlimited.
    pub fn tpm(mut self, tpm: Option<NonZeroU64>) -> Self {
        self.config.limits.tpm = tpm;
        self
    }

    /// Input tokens per minute (Anthropic's ITPM).
    pub fn itpm(mut self, itpm: Option<NonZeroU64>) -> Self {
        self.config.limits.itpm = itpm;
        self
    }

    /// Output tokens per minute (Anthropic's OTPM): `max_tokens` charged at admission,
    /// the unused part given back.
    pub fn otpm(mut self, otpm: Option<NonZeroU64>) -> Self {
        self.config.limits.otpm = otpm;
        self
    }

    /// The slice over which the per-minute limits are enforced (default 1 s).
    pub fn burst(mut self, burst: Duration) -> Self {
        self.config.limits.burst = burst;
        self
    }

    /// How the request and token budgets are counted (default: rolling, with slices).
    pub fn window(mut self, window: Window) -> Self {
        self.config.limits.window = window;
        self
    }

    /// Another client's `n` requests a minute, counted against the request limit: spread
    /// evenly over time with a rolling window, all at the start of each minute with a
    /// fixed one (so the run starts with that much of the minute already used).
    pub fn external_load(mut self, n: u64) -> Self {
        self.config.limits.external_load = n;
        self
    }

    /// The other client of [`SimBuilder::external_load`] starts this long after the
    /// simulator (default: at once).
    pub fn external_from(mut self, after: Duration) -> Self {
        self.config.limits.external_from = after;
        self
    }

    /// Send a 429's delay only as `PREFIX-retry-after` (seconds), as proxies forward the
    /// upstream's header, instead of `retry-after` and `retry-after-ms`.
    pub fn retry_after_prefix(mut self, prefix: Option<String>) -> Self {
        self.config.retry_after_prefix = prefix;
        self
    }

    /// Whether to send `x-ratelimit-*` headers (default true).
    pub fn send_headers(mut self, on: bool) -> Self {
        self.config.send_headers = on;
        self
    }

    /// Answer every request with 429 `insufficient_quota`.
    pub fn quota(mut self, quota: QuotaMode) -> Self {
        self.config.quota = quota;
        self
    }

    /// The latency model (default: none).
    pub fn latency(mut self, latency: Latency) -> Self {
        self.config.latency = latency;
        self
    }

    /// Serve at most this many requests at once and queue the rest, like a self-hosted
    /// server (vLLM): latency grows instead of 429s.
    pub fn max_concurrency(mut self, limit: Option<usize>) -> Self {
        self.config.max_concurrency = limit.filter(|&c| c > 0);
        self
    }

    /// Inject `fault` into this share of requests (drawn with the seed).
    pub fn fault(mut self, fault: Fault, probability: f64) -> Self {
        self.fault_list.push((fault, probability));
        self
    }

    /// Inject a fault into a share of the requests received within a span of time.
    pub fn fault_window(mut self, window: FaultWindow) -> Self {
        self.config.fault_windows.push(window);
        self
    }

    /// Seed for faults and jitter: the same seed gives the same sequence of draws.
    pub fn seed(mut self, seed: u64) -> Self {
        self.config.seed = seed;
        self
    }

    /// Accept only these model names (default: any).
    pub fn models<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let names: BTreeSet<String> = names.into_iter().map(Into::into).collect();
        self.config.models = if names.is_empty() {
            ModelPolicy::Any
        } else {
            ModelPolicy::Only(names)
        };
        self
    }

    /// Request bodies above this size get 413 (default 32 MiB).
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.config.max_body_bytes = bytes;
        self
    }

    /// Generate exactly this many output tokens (capped by `max_tokens`) instead of a
    /// length between 16 and 64 drawn from the prompt's hash.
    pub fn output_tokens(mut self, tokens: Option<u32>) -> Self {
        self.config.output_tokens = tokens;
        self
    }

    /// Pause between the small pieces of a trickled (slow) body (default 20 ms).
    pub fn trickle_interval(mut self, interval: Duration) -> Self {
        self.config.trickle_interval = interval;
        self
    }

    /// Keep the attempt times of every `X-Client-Request-Id` for `/sim/stats` (default
    /// true). Turn off for very long runs where that record would grow large.
    pub fn record_ids(mut self, on: bool) -> Self {
        self.config.record_ids = on;
        self
    }

    /// Require this API key (as `Authorization: Bearer` or `api-key`); any other gets 401
    /// with the key it sent echoed back, as OpenAI's error does, so clients can be tested
    /// for leaking an echoed key.
    pub fn api_key(mut self, key: Option<String>) -> Self {
        self.config.api_key = key;
        self
    }

    /// Validate and build.
    pub fn build(mut self) -> Result<crate::Sim, ConfigError> {
        let j = self.config.latency.jitter;
        if !(0.0..=1.0).contains(&j) {
            return Err(ConfigError::BadJitter(j));
        }
        let burst = self.config.limits.burst.as_secs_f64();
        if !(burst > 0.0 && burst <= 60.0) {
            return Err(ConfigError::BadBurst(burst));
        }
        if let Some(prefix) = &self.config.retry_after_prefix
            && axum::http::HeaderName::from_bytes(format!("{prefix}-retry-after").as_bytes())
                .is_err()
        {
            return Err(ConfigError::BadPrefix(prefix.clone()));
        }
        self.config.faults = FaultPlan::new(self.fault_list)?;
        Ok(crate::Sim {
            config: self.config,
        })
    }
}

/// Parses `KIND=PROBABILITY`, the command line's form of a fault (`503=0.02`, `reset=0.01`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaultSpec {
    /// The fault.
    pub fault: Fault,
    /// Its probability per request.
    pub probability: f64,
}

impl FromStr for FaultSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (kind, p) = s
            .split_once('=')
            .ok_or_else(|| format!("`{s}`: expected KIND=PROBABILITY, for example 503=0.02"))?;
        let fault: Fault = kind.parse()?;
        let probability: f64 = p
            .parse()
            .map_err(|_| format!("`{p}` is not a probability (a number between 0 and 1)"))?;
        Ok(FaultSpec { fault, probability })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_probability_and_sum() {
        let err = SimBuilder::default()
            .fault(Fault::Status(503), 1.5)
            .build()
            .unwrap_err();
        assert!(matches!(err, ConfigError::BadProbability { .. }));
        let err = SimBuilder::default()
            .fault(Fault::Status(503), 0.6)
            .fault(Fault::Reset, 0.6)
            .build()
            .unwrap_err();
        assert!(matches!(err, ConfigError::FaultSumTooLarge(_)));
    }

    #[test]
    fn rejects_bad_jitter_and_burst() {
        let err = SimBuilder::default()
            .latency(Latency {
                jitter: 2.0,
                ..Latency::ZERO
            })
            .build()
            .unwrap_err();
        assert_eq!(err, ConfigError::BadJitter(2.0));
        let err = SimBuilder::default()
            .burst(Duration::ZERO)
            .build()
            .unwrap_err();
        assert_eq!(err, ConfigError::BadBurst(0.0));
    }

    #[test]
    fn parses_fault_specs() {
        let spec: FaultSpec = "503=0.25".parse().unwrap();
        assert_eq!(spec.fault, Fault::Status(503));
        assert_eq!(spec.probability, 0.25);
        let spec: FaultSpec = "close-mid-body=0.1".parse().unwrap();
        assert_eq!(spec.fault, Fault::CloseMidBody);
        assert!("reset".parse::<FaultSpec>().is_err());
        assert!("teapot=0.1".parse::<FaultSpec>().is_err());
        assert!("503=lots".parse::<FaultSpec>().is_err());
    }
}
