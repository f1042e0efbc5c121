//! The simulator without a socket: each request is answered by calling the router
//! directly, so a client's engine can be tested on paused `tokio::time`, deterministic
//! and in milliseconds. Faults that act on the connection become errors: a reset is
//! [`InMemoryError::Reset`], a body cut short is [`InMemoryError::Body`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use http_body_util::BodyExt;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::server::{ConnControl, Sim};
use crate::state::SimState;
use crate::stats::SimStats;

/// The base URL an in-memory simulator answers to. Nothing listens there: only a client
/// given [`InMemorySim::call`] as its transport reaches it.
pub const IN_MEMORY_BASE_URL: &str = "http://sim.in-memory.invalid/v1";

/// A simulator answering calls in the same process. Cheap to clone: clones share one
/// simulator (limits, statistics, faults).
#[derive(Debug, Clone)]
pub struct InMemorySim {
    state: Arc<SimState>,
    router: axum::Router,
}

/// How a connection-level fault shows without a connection.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum InMemoryError {
    /// The server reset the connection before answering.
    #[error("connection reset by the simulator")]
    Reset,
    /// The answer's body failed part way (the connection closed mid-body).
    #[error("the answer's body was cut off: {0}")]
    Body(String),
}

impl Sim {
    /// This simulator in memory (see [`InMemorySim`]). Its clock is `tokio::time`'s, so
    /// on a paused clock its latency, windows and `retry-after` take no real time.
    pub fn in_memory(self) -> InMemorySim {
        crate::tokens::warm_up();
        let state = Arc::new(SimState::new(self.config));
        let router = crate::api::router(state.clone());
        InMemorySim { state, router }
    }
}

impl InMemorySim {
    /// [`IN_MEMORY_BASE_URL`]: what the client takes as its base URL.
    pub fn base_url(&self) -> String {
        IN_MEMORY_BASE_URL.to_owned()
    }

    /// A snapshot of the statistics.
    pub fn stats(&self) -> SimStats {
        self.state.recorder.snapshot(self.state.now())
    }

    /// Changes the rate limits from now on (what `POST /sim/limits` does): a key's tier
    /// raised mid-run, or a limit lowered. Returns the limits in force after.
    pub fn set_limits(&self, change: crate::LimitChange) -> crate::RateLimits {
        self.state.set_limits(change)
    }

    /// Answers one request as the HTTP server would, the whole body read.
    pub async fn call(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, InMemoryError> {
        let close = CancellationToken::new();
        let control = ConnControl {
            close: close.clone(),
            reset: Arc::new(AtomicBool::new(false)),
        };
        let reset = control.reset.clone();
        let mut request = request.map(axum::body::Body::from);
        request.extensions_mut().insert(control);
        let answer = self.router.clone().oneshot(request);
        let response = tokio::select! {
            response = answer => match response {
                Ok(response) => response,
                Err(never) => match never {},
            },
            _ = close.cancelled() => return Err(InMemoryError::Reset),
        };
        if reset.load(Ordering::Acquire) {
            return Err(InMemoryError::Reset);
        }
        let (parts, body) = response.into_parts();
        let body = tokio::select! {
            body = body.collect() => body.map_err(|e| InMemoryError::Body(e.to_string()))?.to_bytes(),
            _ = close.cancelled() => return Err(InMemoryError::Reset),
        };
        Ok(http::Response::from_parts(parts, body))
    }
}
