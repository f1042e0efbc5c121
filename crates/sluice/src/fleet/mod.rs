//! Several endpoints as one: a run over OpenAI, Azure deployments in several regions,
//! Anthropic, a fleet of vLLM servers..., each with its own key, dialect, models, limits
//! and concurrency ([`EndpointSpec`], given to [`crate::ClientBuilder::endpoints`]).
//!
//! Each request goes to an endpoint that serves its model, the one with the most free
//! capacity first (free permits, scaled by its weight) among those whose budgets admit it
//! now, so together they run at the sum of their limits. Every endpoint keeps its own
//! admission: its own budgets, the limits its headers state, its own pause and AIMD after a
//! refusal. An endpoint that fails again and again (connection refused, timeouts, 5xx
//! storms, a key it refuses) is taken out for a while and its requests go to
//! the others; a failure that is the endpoint's and not the request's (401, 403, 404,
//! 402, quota) sends the request to another endpoint instead of failing it. One output,
//! the same exactly-once records: the engine above the endpoints is unchanged.
//!
//! [`file::load`] reads a list of endpoints from TOML (the CLI's `--endpoints FILE`).

pub mod file;
pub(crate) mod health;

use crate::builder::Concurrency;
use crate::limits::Limits;
use crate::transport::{ApiKey, AuthStyle, Provider};

/// One endpoint of several.
#[derive(Debug, Clone)]
pub struct EndpointSpec {
    /// Its name, in statistics and messages.
    pub name: String,
    /// Its base URL (see [`crate::ClientBuilder::base_url`]); `None`: its provider's
    /// default.
    pub base_url: Option<String>,
    /// Its dialect.
    pub provider: Provider,
    /// Its key, if it needs one.
    pub api_key: Option<ApiKey>,
    /// How the key is sent; `None`: as the provider wants it.
    pub auth: Option<AuthStyle>,
    /// The models it serves; empty: every model.
    pub models: Vec<String>,
    /// Its own budgets.
    pub limits: Limits,
    /// Its requests in flight at most, fixed or found from latency (for servers that
    /// queue, such as vLLM).
    pub concurrency: Concurrency,
    /// Its share when several have room (default 1).
    pub weight: f64,
    /// Whether its bare 503s mean overload and slow everyone as a 529 does; `None`: known
    /// from its host ([`crate::transport::sends_503_for_overload`]).
    pub overload_503: Option<bool>,
}

impl EndpointSpec {
    /// An endpoint at `base_url` speaking `provider`, serving every model, with no budgets,
    /// 64 requests in flight and weight 1.
    pub fn new(name: impl Into<String>, provider: Provider, base_url: Option<String>) -> Self {
        EndpointSpec {
            name: name.into(),
            base_url,
            provider,
            api_key: None,
            auth: None,
            models: Vec::new(),
            limits: Limits::default(),
            concurrency: Concurrency::default(),
            weight: 1.0,
            overload_503: None,
        }
    }

    /// Whether it serves `model`.
    pub fn serves(&self, model: &str) -> bool {
        self.models.is_empty() || self.models.iter().any(|m| m == model)
    }
}

/// What one endpoint has done so far.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct EndpointStats {
    /// Its name.
    pub name: String,
    /// Attempts sent to it.
    pub sent: u64,
    /// Of those, answered with a success.
    pub succeeded: u64,
    /// Of those, failed (any failure: refusals, errors, no answer).
    pub failed: u64,
    /// Times it was taken out.
    pub ejections: u32,
    /// Whether it is out now.
    pub ejected: bool,
    /// Its requests in flight allowed now (what its controller grants, when found).
    pub concurrency: usize,
}
