//! `/v1/responses`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{ApiRequest, Extra, TokenUsage};
use crate::request::Endpoint;

/// A responses request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ResponsesRequest {
    /// The model.
    pub model: String,
    /// Text, or input items as the API spells them.
    pub input: Value,
    /// Instructions (a system message).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    /// The most tokens to generate, reasoning included.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u64>,
    /// Every other parameter.
    #[serde(flatten)]
    pub extra: Extra,
}

impl ResponsesRequest {
    /// A request to `model` with text `input`.
    pub fn new(model: impl Into<String>, input: impl Into<String>) -> Self {
        ResponsesRequest {
            model: model.into(),
            input: Value::String(input.into()),
            instructions: None,
            max_output_tokens: None,
            extra: Extra::new(),
        }
    }
}

impl ApiRequest for ResponsesRequest {
    const ENDPOINT: Endpoint = Endpoint::Responses;
    type Response = ResponsesResponse;
}

/// A response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ResponsesResponse {
    /// The server's id for it.
    #[serde(default)]
    pub id: String,
    /// The model that answered.
    #[serde(default)]
    pub model: String,
    /// Output items (messages, reasoning, tool calls) as the API spells them.
    #[serde(default)]
    pub output: Vec<Value>,
    /// Tokens counted.
    #[serde(default)]
    pub usage: Option<TokenUsage>,
    /// Everything else.
    #[serde(flatten)]
    pub extra: Extra,
}

impl ResponsesResponse {
    /// The text of every `output_text` part, joined: what the SDKs call `output_text`.
    pub fn output_text(&self) -> String {
        self.output
            .iter()
            .filter_map(|item| item.get("content")?.as_array())
            .flatten()
            .filter(|part| part.get("type").and_then(Value::as_str) == Some("output_text"))
            .filter_map(|part| part.get("text")?.as_str())
            .collect()
    }
}
