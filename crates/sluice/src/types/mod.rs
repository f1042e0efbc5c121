//! Typed request and response bodies for the four OpenAI endpoints: only the fields that
//! matter, plus a catch-all map (`extra`) on every struct so that a field this crate does
//! not know (a new provider parameter, a vendor extension) is still sent and still read.
//! [`ApiRequest`] ties a request type to its endpoint and its response, for
//! [`crate::Client::call`].
//!
//! Bodies of any other shape go through [`crate::Request::json`] and
//! [`crate::Success::json`] with the caller's own types.

mod chat;
mod completions;
mod embeddings;
mod responses;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use chat::{ChatChoice, ChatRequest, ChatResponse, Content, Message, ResponseMessage, Role};
pub use completions::{CompletionChoice, CompletionRequest, CompletionResponse, Prompt};
pub use embeddings::{Embedding, EmbeddingInput, EmbeddingRequest, EmbeddingResponse};
pub use responses::{ResponsesRequest, ResponsesResponse};

use crate::request::Endpoint;

/// A request body that knows its endpoint and the type of its answer.
pub trait ApiRequest: Serialize {
    /// Where it is sent.
    const ENDPOINT: Endpoint;
    /// What a success answers.
    type Response: serde::de::DeserializeOwned;
}

/// Token counts as the server reports them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TokenUsage {
    /// Prompt (input) tokens; `input_tokens` on the responses endpoint.
    #[serde(default, alias = "input_tokens")]
    pub prompt_tokens: u64,
    /// Completion (output) tokens; `output_tokens` on the responses endpoint.
    #[serde(default, alias = "output_tokens")]
    pub completion_tokens: u64,
    /// Both.
    #[serde(default)]
    pub total_tokens: u64,
    /// Everything else (token details).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A catch-all map for fields not named in a struct.
pub type Extra = Map<String, Value>;
