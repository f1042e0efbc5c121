//! `/v1/embeddings`.

use serde::{Deserialize, Serialize};

use super::{ApiRequest, Extra, TokenUsage};
use crate::request::Endpoint;

/// One text or several.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EmbeddingInput {
    /// One text.
    One(String),
    /// Several (OpenAI takes up to 2,048 at once).
    Many(Vec<String>),
}

/// An embeddings request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct EmbeddingRequest {
    /// The model.
    pub model: String,
    /// What to embed.
    pub input: EmbeddingInput,
    /// Fewer dimensions than the model's own (text-embedding-3 models).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<u32>,
    /// Every other parameter.
    #[serde(flatten)]
    pub extra: Extra,
}

impl EmbeddingRequest {
    /// A request to embed `inputs` with `model`.
    pub fn new(model: impl Into<String>, inputs: Vec<String>) -> Self {
        EmbeddingRequest {
            model: model.into(),
            input: EmbeddingInput::Many(inputs),
            dimensions: None,
            extra: Extra::new(),
        }
    }
}

impl ApiRequest for EmbeddingRequest {
    const ENDPOINT: Endpoint = Endpoint::Embeddings;
    type Response = EmbeddingResponse;
}

/// Embeddings, one per input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct EmbeddingResponse {
    /// The model that answered.
    #[serde(default)]
    pub model: String,
    /// One per input, each with its input's index.
    #[serde(default)]
    pub data: Vec<Embedding>,
    /// Tokens counted.
    #[serde(default)]
    pub usage: Option<TokenUsage>,
    /// Everything else.
    #[serde(flatten)]
    pub extra: Extra,
}

/// One input's embedding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Embedding {
    /// The input it belongs to.
    #[serde(default)]
    pub index: usize,
    /// The vector.
    pub embedding: Vec<f32>,
    /// Everything else.
    #[serde(flatten)]
    pub extra: Extra,
}
