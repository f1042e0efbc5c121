//! Results and errors as Python sees them.

use pyo3::prelude::*;
use sluice::{BatchResult, RequestError, Success};

use crate::RequestFailed;

/// One request's final result, flat: the Python `Result` wraps it.
#[pyclass(frozen, module = "sluice._sluice")]
pub struct NativeResult {
    #[pyo3(get)]
    tag: u64,
    #[pyo3(get)]
    custom_id: String,
    #[pyo3(get)]
    attempts: u32,
    #[pyo3(get)]
    latency: f64,
    #[pyo3(get)]
    status: Option<u16>,
    /// The response body (a success's, or the last error answer's), as text.
    #[pyo3(get)]
    body: Option<String>,
    #[pyo3(get)]
    error_code: Option<&'static str>,
    #[pyo3(get)]
    error_message: Option<String>,
    #[pyo3(get)]
    request_id: Option<String>,
    #[pyo3(get)]
    prompt_tokens: u64,
    #[pyo3(get)]
    completion_tokens: u64,
    #[pyo3(get)]
    cost: Option<f64>,
    #[pyo3(get)]
    gave_up: Option<&'static str>,
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

impl NativeResult {
    pub fn of(r: BatchResult) -> Self {
        let mut out = NativeResult {
            tag: r.tag,
            custom_id: r.custom_id,
            attempts: r.attempts,
            latency: r.latency.as_secs_f64(),
            status: None,
            body: None,
            error_code: None,
            error_message: None,
            request_id: None,
            prompt_tokens: 0,
            completion_tokens: 0,
            cost: None,
            gave_up: None,
        };
        match r.outcome {
            Ok(s) => {
                out.status = Some(s.status);
                out.body = Some(text(&s.body));
                out.request_id = s.request_id;
                out.prompt_tokens = s.usage.prompt_tokens;
                out.completion_tokens = s.usage.completion_tokens;
                out.cost = s.cost;
            }
            Err(e) => {
                out.status = e.status;
                out.body = e.body.as_deref().map(text);
                out.error_code = Some(e.kind.code());
                out.error_message = Some(e.full_message().into_owned());
                out.request_id = e.request_id;
                out.gave_up = e.gave_up.map(|g| g.code());
            }
        }
        out
    }
}

/// A success as `(status, body, request_id, prompt_tokens, completion_tokens, cost)`.
pub type SuccessTuple = (u16, String, Option<String>, u64, u64, Option<f64>);

pub fn success_tuple(s: Success) -> SuccessTuple {
    (
        s.status,
        text(&s.body),
        s.request_id,
        s.usage.prompt_tokens,
        s.usage.completion_tokens,
        s.cost,
    )
}

/// The Python exception for a request that failed for good.
pub fn failed(e: RequestError) -> PyErr {
    RequestFailed::new_err((
        e.kind.code(),
        e.status,
        e.full_message().into_owned(),
        e.request_id.clone(),
        e.body.as_deref().map(text),
        e.gave_up.map(|g| g.code()),
        e.attempts,
    ))
}
