//! The library face: [`Client`] with [`Client::send`] for one call and [`Client::run`] for
//! a batch. Both go through the same engine (see [`crate::engine`]), so calls and batches
//! made through one client share one set of limits.

use std::num::NonZeroUsize;
use std::sync::Arc;

use futures::{Stream, StreamExt};

use crate::batch::{Batch, Queue};
use crate::binding::Binding;
use crate::chat::{Chat, next_call_id, typed};
use crate::engine::{BatchRun, Inner, spawn_batch};
use crate::error::{ConfigError, ErrorKind, RequestError};
use crate::halt::StopEarly;
use crate::outcome::Success;
use crate::redact::Redactor;
use crate::request::{Endpoint, Request};
use crate::stats::Stats;
use crate::types::{ApiRequest, EmbeddingRequest, EmbeddingResponse};

pub use crate::builder::{ClientBuilder, Concurrency};

/// The most inputs [`Client::embed`] puts in one request (OpenAI's limit).
pub const EMBED_CHUNK: usize = 2048;

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

impl Client {
    /// A builder with the defaults.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// A client for the server the environment names, as the OpenAI SDKs read it: the key
    /// from `OPENAI_API_KEY`, the base URL from `OPENAI_BASE_URL` (default
    /// `https://api.openai.com/v1`). For limits and other settings, start from
    /// [`ClientBuilder::from_env`].
    pub fn from_env() -> Result<Client, ConfigError> {
        ClientBuilder::default().from_env()?.build()
    }

    /// A chat completion, written as it reads:
    /// `client.chat("gpt-4o-mini").user("hi").send().await?.text()`.
    pub fn chat(&self, model: impl Into<String>) -> Chat<'_> {
        Chat::new(self, model)
    }

    /// Sends a typed request (see [`crate::types`]) and reads its typed answer.
    pub async fn call<R: ApiRequest>(&self, body: &R) -> Result<R::Response, RequestError> {
        let request = Request::json(next_call_id(), R::ENDPOINT, body).map_err(|e| {
            RequestError::new(
                ErrorKind::InvalidInput,
                format!("the request body is not a JSON object: {e}"),
            )
        })?;
        typed(&self.send(&request).await?)
    }

    /// Embeds `inputs` with `model`: one vector per input, in input order. Inputs are sent
    /// in requests of up to [`EMBED_CHUNK`] (OpenAI's most per request), together as a
    /// batch, within the client's limits; the first request that fails for good fails the
    /// call.
    pub async fn embed<I, T>(&self, model: &str, inputs: I) -> Result<Vec<Vec<f32>>, RequestError>
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        let inputs: Vec<String> = inputs.into_iter().map(Into::into).collect();
        let chunks: Vec<Request> = inputs
            .chunks(EMBED_CHUNK)
            .map(|chunk| {
                let body = EmbeddingRequest::new(model, chunk.to_vec());
                Request::typed(next_call_id(), Endpoint::Embeddings, &body)
            })
            .collect();
        let expected: Vec<usize> = inputs.chunks(EMBED_CHUNK).map(<[String]>::len).collect();
        let window = NonZeroUsize::new(chunks.len().max(1)).unwrap_or(NonZeroUsize::MIN);
        let mut results = self
            .batch_of(futures::stream::iter(chunks), StopEarly::never())
            .in_order(window);
        let mut vectors = Vec::with_capacity(inputs.len());
        let mut chunk = 0;
        while let Some(result) = results.next().await {
            let response: EmbeddingResponse = typed(&result.outcome?)?;
            let mut data = response.data;
            data.sort_by_key(|e| e.index);
            if data.len() != expected[chunk] {
                return Err(RequestError::new(
                    ErrorKind::MalformedResponse,
                    format!(
                        "{} embeddings came back for {} inputs",
                        data.len(),
                        expected[chunk]
                    ),
                ));
            }
            vectors.extend(data.into_iter().map(|e| e.embedding));
            chunk += 1;
        }
        if chunk < expected.len() {
            return Err(RequestError::new(
                ErrorKind::Cancelled,
                "the embedding requests ended without every result",
            ));
        }
        Ok(vectors)
    }

    /// A batch with options (cancellation token, progress callback, input order); see
    /// [`Batch`]. [`Client::run`] is the same batch with none.
    pub fn batch<S>(&self, requests: S) -> Batch<'_, S>
    where
        S: Stream<Item = Request> + Send + Unpin + 'static,
    {
        Batch::new(self, requests)
    }

    /// A queue to submit calls to one by one, each awaiting its result, in priority order
    /// (see [`Queue`]). Needs a tokio runtime: its batch runs on a task of its own.
    pub fn queue(&self) -> Queue {
        Queue::start(self)
    }

    fn batch_of<S>(&self, requests: S, stop_early: StopEarly) -> Batch<'_, S>
    where
        S: Stream<Item = Request> + Send + Unpin + 'static,
    {
        Batch::new(self, requests).stop_early(stop_early)
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
        self.run_with(requests, None)
    }

    /// A batch stopping early as `stop_early` says, or as the client's policy says.
    pub(crate) fn run_with<S>(&self, requests: S, stop_early: Option<StopEarly>) -> BatchRun
    where
        S: Stream<Item = Request> + Send + Unpin + 'static,
    {
        spawn_batch(
            self.inner.clone(),
            requests,
            stop_early.unwrap_or(self.inner.stop_early),
        )
    }

    /// Whether this client counts requests' tokens (a token budget or a spend cap): the
    /// encoding of a request's model is then built before the request can be admitted,
    /// which [`crate::estimate::warm_up`] can do ahead of time.
    pub fn counts_tokens(&self) -> bool {
        self.inner.counts_tokens()
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

    /// What each endpoint has done: the one endpoint, or each of several
    /// ([`ClientBuilder::endpoints`]), in order: attempts sent, successes, failures,
    /// ejections, and whether it is out now.
    pub fn endpoints(&self) -> Vec<crate::fleet::EndpointStats> {
        self.inner.endpoint_stats()
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
