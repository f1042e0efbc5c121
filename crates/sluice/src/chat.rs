//! [`Chat`]: one chat completion written as it reads, `client.chat(model).user(..).send()`.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;

use crate::Client;
use crate::error::{ErrorKind, RequestError};
use crate::outcome::Success;
use crate::request::Request;
use crate::types::{ChatRequest, ChatResponse, Content, Message, Role};

/// Ids for calls that were not given one: unique in the process.
static NEXT_CALL: AtomicU64 = AtomicU64::new(1);

/// A fresh id for a call made without one (`call-1`, `call-2`, ...).
pub(crate) fn next_call_id() -> String {
    format!("call-{}", NEXT_CALL.fetch_add(1, Ordering::Relaxed))
}

/// A chat completion being written: messages and parameters, then [`Chat::send`] (or
/// [`Chat::request`] to put it in a batch).
///
/// ```no_run
/// # async fn demo(client: sluice::Client) -> Result<(), sluice::RequestError> {
/// let text = client
///     .chat("gpt-4o-mini")
///     .system("You are terse.")
///     .user("Why is the sky blue?")
///     .max_tokens(60)
///     .send()
///     .await?
///     .text();
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use = "a chat is sent only by .send() or .request()"]
pub struct Chat<'a> {
    client: &'a Client,
    body: ChatRequest,
    id: Option<String>,
    priority: i32,
}

impl<'a> Chat<'a> {
    pub(crate) fn new(client: &'a Client, model: impl Into<String>) -> Self {
        Chat {
            client,
            body: ChatRequest::new(model),
            id: None,
            priority: 0,
        }
    }

    /// Adds a system message.
    pub fn system(self, content: impl Into<Content>) -> Self {
        self.message(Message::new(Role::System, content))
    }

    /// Adds a user message.
    pub fn user(self, content: impl Into<Content>) -> Self {
        self.message(Message::new(Role::User, content))
    }

    /// Adds an assistant message (history, few-shot examples).
    pub fn assistant(self, content: impl Into<Content>) -> Self {
        self.message(Message::new(Role::Assistant, content))
    }

    /// Adds any message.
    pub fn message(mut self, message: Message) -> Self {
        self.body.messages.push(message);
        self
    }

    /// The most tokens to generate: also what a token budget reserves for the answer.
    pub fn max_tokens(mut self, n: u64) -> Self {
        self.body.max_tokens = Some(n);
        self
    }

    /// Sampling temperature.
    pub fn temperature(mut self, t: f64) -> Self {
        self.body.temperature = Some(t);
        self
    }

    /// Any other parameter, as the API spells it (`"seed"`, `"response_format"`, ...).
    pub fn param(mut self, name: impl Into<String>, value: Value) -> Self {
        self.body.extra.insert(name.into(), value);
        self
    }

    /// The id it is sent and reported under (default: `call-N`).
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Its priority against the other requests waiting in the same batch or
    /// [`crate::Queue`].
    pub fn priority(mut self, priority: impl Into<i32>) -> Self {
        self.priority = priority.into();
        self
    }

    /// The request it makes, for a batch.
    pub fn request(&self) -> Request {
        let id = self.id.clone().unwrap_or_else(next_call_id);
        Request::typed(id, crate::Endpoint::ChatCompletions, &self.body)
            .with_priority(self.priority)
    }

    /// Sends it (admission, retries and limits as for any request of the client).
    pub async fn send(self) -> Result<Success, RequestError> {
        self.client.send(&self.request()).await
    }

    /// Submits it to `queue` (where priorities order it against the queue's other calls)
    /// and waits for its answer.
    pub async fn submit(self, queue: &crate::Queue) -> Result<Success, RequestError> {
        queue.submit(self.request()).await
    }

    /// Sends it and reads the answer as a [`ChatResponse`].
    pub async fn response(self) -> Result<ChatResponse, RequestError> {
        let success = self.send().await?;
        typed(&success)
    }
}

/// A success's body as `R`, or a [`ErrorKind::MalformedResponse`] error that keeps it.
pub(crate) fn typed<R: serde::de::DeserializeOwned>(success: &Success) -> Result<R, RequestError> {
    success.json().map_err(|e| {
        let mut error = RequestError::new(
            ErrorKind::MalformedResponse,
            format!("the answer does not have the expected shape: {e}"),
        );
        error.status = Some(success.status);
        error.request_id = success.request_id.clone();
        error.body = Some(success.body.clone());
        error
    })
}
