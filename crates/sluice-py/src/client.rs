//! `NativeClient`: a `sluice::Client` configured from Python keywords.

use std::num::{NonZeroU32, NonZeroUsize};
use std::time::Duration;

use bytes::Bytes;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3_async_runtimes::tokio::{future_into_py, get_runtime};
use sluice::cost::SpendCap;
use sluice::limits::Budget;
use sluice::{ApiKey, Backoff, Client, Endpoint, Limits, Request, RetryPolicy};

use crate::batch::NativeBatch;
use crate::outcome::{failed, success_tuple};

/// The engine's client; see the Python `sluice.Client` for what each setting means.
#[pyclass(frozen, module = "sluice._sluice")]
pub struct NativeClient {
    pub(crate) client: Client,
}

fn budget(limit: Option<u64>, auto: bool) -> Budget {
    let limit = limit.and_then(std::num::NonZeroU64::new);
    if auto {
        Budget::Auto { ceiling: limit }
    } else {
        limit.into()
    }
}

fn seconds(s: f64, what: &str) -> PyResult<Duration> {
    Duration::try_from_secs_f64(s)
        .map_err(|_| PyValueError::new_err(format!("{what} must be a number of seconds >= 0")))
}

/// Parses an endpoint path (`/v1/chat/completions`, ...).
pub(crate) fn endpoint(path: &str) -> PyResult<Endpoint> {
    path.parse()
        .map_err(|_| PyValueError::new_err(format!("unsupported endpoint {path:?}")))
}

#[pymethods]
impl NativeClient {
    #[new]
    #[pyo3(signature = (
        base_url, api_key=None, *, rpm=None, tpm=None, rpm_auto=false, tpm_auto=false,
        concurrency=64, concurrency_auto=false, timeout=600.0, connect_timeout=10.0,
        max_attempts=8, backoff_base=0.5, backoff_max=60.0, max_retry_after=120.0,
        seed=None, headers=Vec::new(), max_cost=None, burst=None, limiter="token-bucket",
        provider="openai", itpm=None, otpm=None, itpm_auto=false, otpm_auto=false
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        base_url: String,
        api_key: Option<String>,
        rpm: Option<u64>,
        tpm: Option<u64>,
        rpm_auto: bool,
        tpm_auto: bool,
        concurrency: usize,
        concurrency_auto: bool,
        timeout: f64,
        connect_timeout: f64,
        max_attempts: u32,
        backoff_base: f64,
        backoff_max: f64,
        max_retry_after: f64,
        seed: Option<u64>,
        headers: Vec<(String, String)>,
        max_cost: Option<f64>,
        burst: Option<f64>,
        limiter: &str,
        provider: &str,
        itpm: Option<u64>,
        otpm: Option<u64>,
        itpm_auto: bool,
        otpm_auto: bool,
    ) -> PyResult<Self> {
        let provider: sluice::Provider = provider.parse().map_err(PyValueError::new_err)?;
        let algorithm = match limiter {
            "token-bucket" => sluice::limits::Algorithm::TokenBucket,
            "sliding-window" => sluice::limits::Algorithm::SlidingWindow,
            other => {
                return Err(PyValueError::new_err(format!(
                    "limiter must be \"token-bucket\" or \"sliding-window\", not {other:?}"
                )));
            }
        };
        let concurrency = NonZeroUsize::new(concurrency)
            .ok_or_else(|| PyValueError::new_err("concurrency must be at least 1"))?;
        let backoff = Backoff::new(
            seconds(backoff_base, "backoff_base")?,
            seconds(backoff_max, "backoff_max")?,
        )
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
        let retry = RetryPolicy {
            max_attempts: NonZeroU32::new(max_attempts)
                .ok_or_else(|| PyValueError::new_err("max_attempts must be at least 1"))?,
            backoff,
            max_retry_after: seconds(max_retry_after, "max_retry_after")?,
            ..RetryPolicy::default()
        };
        let mut builder = Client::builder()
            .provider(provider)
            .base_url(base_url)
            .limits(Limits {
                rpm: budget(rpm, rpm_auto),
                tpm: budget(tpm, tpm_auto),
                itpm: budget(itpm, itpm_auto),
                otpm: budget(otpm, otpm_auto),
                burst: match burst {
                    Some(b) => seconds(b, "burst")?,
                    None => Limits::default().burst,
                },
                algorithm,
            })
            .retry(retry)
            .timeout(seconds(timeout, "timeout")?)
            .connect_timeout(seconds(connect_timeout, "connect_timeout")?);
        builder = if concurrency_auto {
            builder.concurrency_auto(concurrency)
        } else {
            builder.concurrency(concurrency)
        };
        if let Some(key) = api_key {
            builder = builder.api_key(ApiKey::new(key));
        }
        for (name, value) in headers {
            builder = builder.header(name, value);
        }
        if let Some(seed) = seed {
            builder = builder.seed(seed);
        }
        if let Some(cap) = max_cost {
            builder = builder.spend_cap(SpendCap::new(cap, 0.0));
        }
        // Built inside the runtime, where its timers and tasks will run.
        let _inside = get_runtime().enter();
        let client = builder
            .build()
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok(NativeClient { client })
    }

    /// Sends one request (a JSON body) and resolves to
    /// `(status, body, request_id, prompt_tokens, completion_tokens, cost)`, or raises
    /// `RequestFailed`.
    #[pyo3(signature = (body, endpoint_path, custom_id, priority=0))]
    fn send<'py>(
        &self,
        py: Python<'py>,
        body: Vec<u8>,
        endpoint_path: &str,
        custom_id: String,
        priority: i32,
    ) -> PyResult<Bound<'py, PyAny>> {
        let request = Request {
            custom_id,
            endpoint: endpoint(endpoint_path)?,
            body: Bytes::from(body),
            priority,
            tag: 0,
        };
        let client = self.client.clone();
        future_into_py(py, async move {
            client
                .send(&request)
                .await
                .map(success_tuple)
                .map_err(failed)
        })
    }

    /// Starts a batch fed by `NativeBatch.push_many`, with at most `window` requests
    /// queued ahead of the engine.
    fn batch(&self, window: usize) -> PyResult<NativeBatch> {
        NativeBatch::start(&self.client, window.max(1))
    }

    /// The statistics so far, as JSON.
    fn stats_json(&self) -> String {
        let s = self.client.stats();
        serde_json::json!({
            "requests": s.finished(),
            "successes": s.ok,
            "failures": s.failed_total(),
            "attempts": s.attempts,
            "retries": s.retries,
            "rate_limited": s.rate_limited,
            "prompt_tokens": s.prompt_tokens,
            "completion_tokens": s.completion_tokens,
            "total_tokens": s.total_tokens(),
            "cost": s.known_cost(),
            "success_rate": s.success_rate(),
            "latency_mean": s.latency_mean().as_secs_f64(),
            "latency_p50": s.latency(0.5).as_secs_f64(),
            "latency_p90": s.latency(0.9).as_secs_f64(),
            "latency_p99": s.latency(0.99).as_secs_f64(),
            "failed_by_kind": s.failed.iter().map(|(k, n)| (k.code(), *n)).collect::<std::collections::BTreeMap<_, _>>(),
        })
        .to_string()
    }
}
