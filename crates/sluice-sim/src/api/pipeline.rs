//! The path every API request takes: intake (count, read, parse, validate), admission
//! (quota, rate limits, capacity, fault draw) and delivery (latency, faults, headers).
//!
//! Endpoints only say how to read their own fields and how to shape their own answer.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use serde_json::Value;
use tokio::sync::SemaphorePermit;

use super::dialect::Dialect;
use super::errors::ApiError;
use crate::config::{Latency, QuotaMode};
use crate::duration_fmt::format_reset;
use crate::faults::{Draws, Fault};
use crate::limiter::{Charge, Decision, LimitView};
use crate::server::ConnControl;
use crate::state::SimState;
use crate::stats::InFlight;

/// The header a client names its request with; the simulator counts attempts per value.
pub const CLIENT_REQUEST_ID: &str = "x-client-request-id";

/// A request that has been received and parsed.
pub(crate) struct Intake {
    pub dialect: Dialect,
    pub client_id: Option<String>,
    pub seq: u64,
    pub body: Value,
    pub model: String,
}

/// What an endpoint learned from its body that admission needs.
pub(crate) struct Cost {
    pub prompt_tokens: u64,
    /// `max_tokens` (or its newer names), if the request set it.
    pub max_tokens: Option<u64>,
    /// Choices asked for.
    pub n: u64,
    /// Fingerprint of the prompt, quoted in the reply.
    pub fingerprint: u64,
    /// Whether the endpoint generates text (embeddings do not).
    pub generates: bool,
}

/// A request past admission: everything delivery needs.
pub(crate) struct Admitted<'a> {
    pub state: &'a SimState,
    pub dialect: Dialect,
    pub client_id: Option<String>,
    pub seq: u64,
    pub model: String,
    pub cost: Cost,
    /// Output tokens per choice.
    pub output_tokens: u32,
    pub fault: Option<Fault>,
    jitter: f64,
    view: LimitView,
    _permit: Option<SemaphorePermit<'a>>,
    _in_flight: InFlight<'a>,
}

/// Counts the request, checks its key and the headers its dialect requires, reads its body
/// within the size limit, parses it as a JSON object with a string `model` the simulator
/// accepts.
pub(crate) async fn intake(
    state: &SimState,
    dialect: Dialect,
    headers: &HeaderMap,
    body: Body,
) -> Result<Intake, Response> {
    let reply_error = |state, e, seq| reply_error(state, dialect, e, seq);
    let client_id = headers
        .get(CLIENT_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let seq = state
        .recorder
        .received(state.now(), client_id.as_deref(), state.config.record_ids);
    if let Some(expected) = &state.config.api_key {
        let given = dialect.given_key(headers).unwrap_or_default();
        if given != expected {
            let e = ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_request_error",
                format!("Incorrect API key provided: {given}. You can find your API key at https://platform.openai.com/account/api-keys."),
            )
            .code("invalid_api_key");
            return Err(reply_error(state, e, seq));
        }
    }
    if let Some(e) = dialect.missing_header(headers) {
        return Err(reply_error(state, e, seq));
    }
    let limit = state.config.max_body_bytes;
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => {
            let e = ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request_error",
                format!("Request body is larger than the limit of {limit} bytes."),
            )
            .code("request_too_large");
            return Err(reply_error(state, e, seq));
        }
    };
    let body: Value = match serde_json::from_slice(&bytes) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => {
            let e = ApiError::invalid("The request body must be a JSON object.");
            return Err(reply_error(state, e, seq));
        }
        Err(err) => {
            let e = ApiError::invalid(format!(
                "We could not parse the JSON body of your request. ({err})"
            ));
            return Err(reply_error(state, e, seq));
        }
    };
    let model = match body.get("model") {
        Some(Value::String(m)) => m.clone(),
        Some(_) => {
            let e = ApiError::invalid("'model' must be a string.").param("model");
            return Err(reply_error(state, e, seq));
        }
        None => return Err(reply_error(state, ApiError::missing("model"), seq)),
    };
    if !state.config.models.accepts(&model) {
        let e = ApiError::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            format!("The model `{model}` does not exist or you do not have access to it."),
        )
        .code("model_not_found")
        .param("model");
        return Err(reply_error(state, e, seq));
    }
    Ok(Intake {
        dialect,
        client_id,
        seq,
        body,
        model,
    })
}

/// Reads an optional non-negative integer field; a wrong type is a 400.
pub(crate) fn optional_u64(body: &Value, field: &'static str) -> Result<Option<u64>, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or_else(|| {
            ApiError::invalid(format!("'{field}' must be a non-negative integer.")).param(field)
        }),
    }
}

/// Quota, rate limits, capacity and the fault draw, in that order: a fault only hits a
/// request the limits let in, so it still costs budget, as failed requests do at OpenAI.
pub(crate) async fn admit<'a>(
    state: &'a SimState,
    intake: Intake,
    cost: Cost,
) -> Result<Admitted<'a>, Response> {
    let Intake {
        dialect,
        client_id,
        seq,
        model,
        ..
    } = intake;
    if state.config.quota == QuotaMode::Exhausted {
        let e = match dialect {
            Dialect::OpenAi => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "insufficient_quota",
                "You exceeded your current quota, please check your plan and billing details.",
            )
            .code("insufficient_quota"),
            // Anthropic says so with a 400.
            Dialect::Anthropic => ApiError::invalid(
                "Your credit balance is too low to access the Anthropic API. Please go to                  Plans & Billing to upgrade or purchase credits.",
            ),
        };
        state.recorder.rate_limited("insufficient_quota");
        return Err(with_request_id(e.response(dialect), dialect, seq));
    }
    let output = cost.max_tokens.unwrap_or(0) * cost.n;
    let charge = Charge {
        tokens: cost.prompt_tokens + output,
        input: cost.prompt_tokens,
        output,
    };
    let charged = charge.tokens;
    let decision = {
        let mut limiter = state.limiter.lock().unwrap_or_else(|e| e.into_inner());
        if limiter.is_unlimited() {
            Decision::Admitted(LimitView::default())
        } else {
            limiter.check(state.now(), charge)
        }
    };
    let view = match decision {
        Decision::Admitted(view) => view,
        Decision::Refused {
            kind,
            retry_after,
            view,
        } => {
            let e = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                kind.as_str(),
                format!(
                    "Rate limit reached for {model} on {kind} per min. Please try again in {}.",
                    format_reset(retry_after),
                    kind = kind.as_str()
                ),
            )
            .code("rate_limit_exceeded");
            state.recorder.rate_limited(kind.as_str());
            let mut response = e.response(dialect);
            let h = response.headers_mut();
            if state.config.send_headers {
                dialect.put_limit_headers(h, &view);
            }
            put_retry_after(state, h, retry_after);
            return Err(with_request_id(response, dialect, seq));
        }
        Decision::TooLarge {
            kind,
            limit,
            requested,
        } => {
            let e = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "tokens",
                format!(
                    "Request too large for {model} on {kind} per min: Limit {limit}, Requested {requested}. \
                     The input or output tokens must be reduced in order to run successfully.",
                    kind = kind.as_str()
                ),
            )
            .code("rate_limit_exceeded");
            state.recorder.rate_limited("too_large");
            return Err(with_request_id(e.response(dialect), dialect, seq));
        }
    };
    state
        .recorder
        .admitted(state.now(), cost.prompt_tokens, charged);
    let mut draws = Draws::new(state.config.seed, seq);
    let fault = if state.config.faults.is_empty() {
        None
    } else {
        state.config.faults.pick(draws.unit())
    };
    let jitter = state.config.latency.jitter * (2.0 * draws.unit() - 1.0);
    // A window's fault falls on requests the plan spared, with draws of their own after
    // the jitter's, so a window leaves every other draw as it was.
    let fault = fault.or_else(|| {
        let at = state.now();
        state
            .config
            .fault_windows
            .iter()
            .filter(|w| w.covers(at))
            .find(|w| draws.unit() < w.probability)
            .map(|w| w.fault)
    });
    let permit = match &state.capacity {
        // The semaphore is never closed, so acquire only fails if it were.
        Some(sem) => sem.acquire().await.ok(),
        None => None,
    };
    let in_flight = state.recorder.enter();
    let output_tokens = if cost.generates {
        crate::content::output_tokens(
            state.config.output_tokens,
            cost.fingerprint,
            cost.max_tokens,
        )
    } else {
        0
    };
    if let Some(f) = fault {
        state.recorder.fault(f);
    }
    // The output budget gets back what the answer will not use (the simulator knows its
    // length now).
    let unused = output.saturating_sub(u64::from(output_tokens) * cost.n);
    if unused > 0 && state.config.limits.otpm.is_some() {
        state
            .limiter
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .refund_output(unused);
    }
    Ok(Admitted {
        state,
        dialect,
        client_id,
        seq,
        model,
        cost,
        output_tokens,
        fault,
        jitter,
        view,
        _permit: permit,
        _in_flight: in_flight,
    })
}

impl Admitted<'_> {
    /// Time to first token, jittered.
    pub(crate) fn ttft(&self) -> Duration {
        scale(self.state.config.latency.ttft, self.jitter)
    }

    /// Time between output tokens, jittered.
    pub(crate) fn per_token(&self) -> Duration {
        scale(self.state.config.latency.per_token, self.jitter)
    }

    fn latency(&self) -> &Latency {
        &self.state.config.latency
    }

    /// Faults that replace the answer entirely, handled before an endpoint builds its body.
    /// Returns the response to send instead, or `None` to go on.
    pub(crate) async fn early_fault(&self, conn: &ConnControl) -> Option<Response> {
        let fault = self.fault?;
        match fault {
            Fault::Status(429) => {
                // A sparse refusal of a request the limits let in: a gateway shedding load.
                let e = ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "requests",
                    "Rate limit reached for requests. Please try again in 1s.",
                )
                .code("rate_limit_exceeded");
                // Counted as a 429 of kind `injected` (and not again as a status).
                self.state.recorder.rate_limited("injected");
                let mut response = e.response(self.dialect);
                put_retry_after(self.state, response.headers_mut(), Duration::from_secs(1));
                Some(self.decorate(response))
            }
            Fault::Status(code) => {
                sleep(self.ttft()).await;
                let status =
                    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let (kind, message) = match code {
                    408 => ("timeout", "The server timed out waiting for the request."),
                    502 => ("server_error", "Bad gateway."),
                    503 => ("server_error", "Service temporarily unavailable."),
                    504 => ("server_error", "Gateway timeout."),
                    529 => ("overloaded_error", "Overloaded."),
                    _ => (
                        "server_error",
                        "The server had an error while processing your request.",
                    ),
                };
                Some(self.reply(ApiError::new(status, kind, message).response(self.dialect)))
            }
            Fault::Overloaded => {
                // Gemini's shape: a 503 whose body says the model is overloaded.
                sleep(self.ttft()).await;
                let body = serde_json::json!({"error": {
                    "code": 503,
                    "message": "The model is overloaded. Please try again later.",
                    "status": "UNAVAILABLE",
                }});
                let mut response = json_response(Body::from(body.to_string()));
                *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                Some(self.reply(response))
            }
            Fault::BadRequest => {
                let e = ApiError::invalid("Invalid request: the body could not be understood.");
                Some(self.reply(e.response(self.dialect)))
            }
            Fault::Reset => {
                conn.reset();
                std::future::pending::<()>().await;
                None
            }
            Fault::Hang => {
                std::future::pending::<()>().await;
                None
            }
            Fault::CloseMidBody | Fault::Trickle | Fault::MalformedJson => None,
        }
    }

    /// Waits the latency of a whole answer, then sends `body` as JSON, applying the
    /// delivery faults (cut off, trickled, malformed).
    pub(crate) async fn deliver_json(&self, body: &Value) -> Response {
        if !self.latency().is_zero() {
            let generating = self.per_token() * self.output_tokens.saturating_sub(1);
            sleep(self.ttft() + generating).await;
        }
        let bytes = Bytes::from(serde_json::to_vec(body).unwrap_or_default());
        let response = match self.fault {
            Some(Fault::MalformedJson) => {
                let cut = bytes.slice(..bytes.len() / 2);
                json_response(Body::from(cut))
            }
            Some(Fault::CloseMidBody) => {
                let full_len = bytes.len();
                let half = bytes.slice(..full_len / 2);
                // Send the head and half the body, give hyper a moment to flush them, then
                // fail the body: hyper closes the connection with the body short.
                let pieces = futures::stream::unfold(Some(half), |half| async move {
                    match half {
                        Some(half) => Some((Ok(half), None)),
                        None => {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            let cut = std::io::Error::new(
                                std::io::ErrorKind::ConnectionAborted,
                                "simulated close mid-body",
                            );
                            Some((Err(cut), None))
                        }
                    }
                });
                let mut r = json_response(Body::from_stream(pieces));
                r.headers_mut()
                    .insert(header::CONTENT_LENGTH, HeaderValue::from(full_len));
                r
            }
            Some(Fault::Trickle) => {
                let len = bytes.len();
                let mut r = json_response(trickle(bytes, self.state.config.trickle_interval));
                r.headers_mut()
                    .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
                r
            }
            _ => json_response(Body::from(bytes)),
        };
        self.reply(response)
    }

    /// Adds the rate-limit and request-id headers and counts the status.
    pub(crate) fn reply(&self, response: Response) -> Response {
        self.state.recorder.status(response.status().as_u16());
        self.decorate(response)
    }

    /// The limit headers and the request id, without counting the answer.
    fn decorate(&self, mut response: Response) -> Response {
        if self.state.config.send_headers {
            self.dialect
                .put_limit_headers(response.headers_mut(), &self.view);
        }
        with_request_id(response, self.dialect, self.seq)
    }
}

/// Sends `bytes` 16 at a time with `interval` between pieces.
fn trickle(bytes: Bytes, interval: Duration) -> Body {
    let stream = futures::stream::unfold(0usize, move |offset| {
        let bytes = bytes.clone();
        async move {
            if offset >= bytes.len() {
                return None;
            }
            if offset > 0 {
                tokio::time::sleep(interval).await;
            }
            let end = (offset + 16).min(bytes.len());
            Some((Ok::<_, std::io::Error>(bytes.slice(offset..end)), end))
        }
    });
    Body::from_stream(stream)
}

fn json_response(body: Body) -> Response {
    let mut r = Response::new(body);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// An error answer before admission: counted, with a request id.
pub(crate) fn reply_error(state: &SimState, dialect: Dialect, e: ApiError, seq: u64) -> Response {
    state.recorder.status(e.status.as_u16());
    with_request_id(e.response(dialect), dialect, seq)
}

fn with_request_id(mut response: Response, dialect: Dialect, seq: u64) -> Response {
    if let Ok(v) = HeaderValue::from_str(&format!("req_sim{seq:012x}")) {
        response
            .headers_mut()
            .insert(dialect.request_id_header(), v);
    }
    response
}

/// The delay of a 429: `retry-after-ms` and `retry-after` (whole seconds, rounded up), or
/// only `PREFIX-retry-after` when the simulator plays a proxy that renames it.
pub(crate) fn put_retry_after(state: &SimState, h: &mut HeaderMap, retry_after: Duration) {
    let ms = retry_after.as_nanos().div_ceil(1_000_000).max(1) as u64;
    match &state.config.retry_after_prefix {
        Some(prefix) => {
            if let Ok(name) = HeaderName::from_bytes(format!("{prefix}-retry-after").as_bytes()) {
                h.insert(name, HeaderValue::from(ms.div_ceil(1000)));
            }
        }
        None => {
            h.insert("retry-after-ms", HeaderValue::from(ms));
            h.insert(header::RETRY_AFTER, HeaderValue::from(ms.div_ceil(1000)));
        }
    }
}

/// Scales `d` by `1 + jitter`.
fn scale(d: Duration, jitter: f64) -> Duration {
    if d.is_zero() {
        d
    } else {
        d.mul_f64((1.0 + jitter).max(0.0))
    }
}

async fn sleep(d: Duration) {
    if !d.is_zero() {
        tokio::time::sleep(d).await;
    }
}

/// The handle type every handler gets.
pub(crate) type Shared = Arc<SimState>;
