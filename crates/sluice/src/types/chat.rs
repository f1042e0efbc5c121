//! `/v1/chat/completions`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{ApiRequest, Extra, TokenUsage};
use crate::request::Endpoint;

/// Who speaks a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Role {
    /// Instructions (older models).
    System,
    /// Instructions (newer models).
    Developer,
    /// The person asking.
    User,
    /// The model.
    Assistant,
    /// A tool's answer.
    Tool,
}

/// A message's content: text, or parts (text, images, audio) as the API spells them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Content {
    /// Plain text.
    Text(String),
    /// Content parts, e.g. `{"type": "image_url", ...}`.
    Parts(Vec<Value>),
}

impl From<&str> for Content {
    fn from(s: &str) -> Self {
        Content::Text(s.to_owned())
    }
}

impl From<String> for Content {
    fn from(s: String) -> Self {
        Content::Text(s)
    }
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Message {
    /// Who speaks.
    pub role: Role,
    /// What is said.
    pub content: Content,
    /// Anything else (`name`, `tool_call_id`, `tool_calls`).
    #[serde(flatten)]
    pub extra: Extra,
}

impl Message {
    /// A message of `role` saying `content`.
    pub fn new(role: Role, content: impl Into<Content>) -> Self {
        Message {
            role,
            content: content.into(),
            extra: Extra::new(),
        }
    }

    /// A system message.
    pub fn system(content: impl Into<Content>) -> Self {
        Self::new(Role::System, content)
    }

    /// A user message.
    pub fn user(content: impl Into<Content>) -> Self {
        Self::new(Role::User, content)
    }

    /// An assistant message (for few-shot examples and conversation history).
    pub fn assistant(content: impl Into<Content>) -> Self {
        Self::new(Role::Assistant, content)
    }
}

/// A chat completion request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChatRequest {
    /// The model.
    pub model: String,
    /// The conversation.
    pub messages: Vec<Message>,
    /// The most tokens to generate (older name; what rate limits count).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    /// The most tokens to generate, reasoning included (newer name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u64>,
    /// Sampling temperature.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Choices to generate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
    /// Every other parameter (`response_format`, `tools`, `seed`, ...).
    #[serde(flatten)]
    pub extra: Extra,
}

impl ChatRequest {
    /// A request to `model` with no messages yet.
    pub fn new(model: impl Into<String>) -> Self {
        ChatRequest {
            model: model.into(),
            messages: Vec::new(),
            max_tokens: None,
            max_completion_tokens: None,
            temperature: None,
            n: None,
            extra: Extra::new(),
        }
    }
}

impl ApiRequest for ChatRequest {
    const ENDPOINT: Endpoint = Endpoint::ChatCompletions;
    type Response = ChatResponse;
}

/// A chat completion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChatResponse {
    /// The server's id for it.
    #[serde(default)]
    pub id: String,
    /// The model that answered.
    #[serde(default)]
    pub model: String,
    /// One per `n`.
    #[serde(default)]
    pub choices: Vec<ChatChoice>,
    /// Tokens counted.
    #[serde(default)]
    pub usage: Option<TokenUsage>,
    /// Everything else.
    #[serde(flatten)]
    pub extra: Extra,
}

impl ChatResponse {
    /// The first choice's text, if it has any.
    pub fn text(&self) -> Option<&str> {
        self.choices.first()?.message.content.as_deref()
    }
}

/// One generated answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChatChoice {
    /// Its position.
    #[serde(default)]
    pub index: u32,
    /// What the model said.
    pub message: ResponseMessage,
    /// Why it stopped (`stop`, `length`, `tool_calls`, `content_filter`).
    #[serde(default)]
    pub finish_reason: Option<String>,
    /// Everything else (`logprobs`).
    #[serde(flatten)]
    pub extra: Extra,
}

/// A message the model wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ResponseMessage {
    /// `assistant`.
    #[serde(default)]
    pub role: Option<String>,
    /// Its text (none for a pure tool call).
    #[serde(default)]
    pub content: Option<String>,
    /// Everything else (`tool_calls`, `refusal`).
    #[serde(flatten)]
    pub extra: Extra,
}
