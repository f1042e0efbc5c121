//! `/v1/completions` (legacy text completions, and many self-hosted servers).

use serde::{Deserialize, Serialize};

use super::{ApiRequest, Extra, TokenUsage};
use crate::request::Endpoint;

/// One prompt or several.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Prompt {
    /// One prompt.
    One(String),
    /// Several, answered as separate choices.
    Many(Vec<String>),
}

/// A text completion request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CompletionRequest {
    /// The model.
    pub model: String,
    /// The prompt.
    pub prompt: Prompt,
    /// The most tokens to generate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    /// Sampling temperature.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Every other parameter.
    #[serde(flatten)]
    pub extra: Extra,
}

impl CompletionRequest {
    /// A request to `model` for `prompt`.
    pub fn new(model: impl Into<String>, prompt: impl Into<String>) -> Self {
        CompletionRequest {
            model: model.into(),
            prompt: Prompt::One(prompt.into()),
            max_tokens: None,
            temperature: None,
            extra: Extra::new(),
        }
    }
}

impl ApiRequest for CompletionRequest {
    const ENDPOINT: Endpoint = Endpoint::Completions;
    type Response = CompletionResponse;
}

/// A text completion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CompletionResponse {
    /// The model that answered.
    #[serde(default)]
    pub model: String,
    /// One per prompt and `n`.
    #[serde(default)]
    pub choices: Vec<CompletionChoice>,
    /// Tokens counted.
    #[serde(default)]
    pub usage: Option<TokenUsage>,
    /// Everything else.
    #[serde(flatten)]
    pub extra: Extra,
}

/// One generated text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CompletionChoice {
    /// Its position.
    #[serde(default)]
    pub index: u32,
    /// The text.
    #[serde(default)]
    pub text: String,
    /// Why it stopped.
    #[serde(default)]
    pub finish_reason: Option<String>,
    /// Everything else.
    #[serde(flatten)]
    pub extra: Extra,
}
