//! What a request ends as: a response with its usage, or a classified error.

use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;

use crate::error::RequestError;

/// Tokens the server reports having used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// Prompt (input) tokens.
    pub prompt_tokens: u64,
    /// Completion (output) tokens.
    pub completion_tokens: u64,
}

/// A successful answer.
#[derive(Debug, Clone)]
pub struct Success {
    /// The HTTP status (2xx).
    pub status: u16,
    /// The server's request id.
    pub request_id: Option<String>,
    /// The JSON body, as received.
    pub body: Bytes,
    /// The usage it reported.
    pub usage: Usage,
}

/// The final result of one request of a batch.
#[derive(Debug, Clone)]
pub struct BatchResult {
    /// The request's `custom_id`.
    pub custom_id: String,
    /// The request's tag.
    pub tag: u64,
    /// The answer or the error.
    pub outcome: Result<Success, RequestError>,
    /// Attempts made.
    pub attempts: u32,
    /// Time of the last attempt.
    pub latency: Duration,
}

#[derive(Deserialize)]
struct Envelope {
    usage: Option<UsageFields>,
}

#[derive(Deserialize)]
struct UsageFields {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
}

/// Reads `usage` from a body, and in doing so checks the whole body is one JSON object.
/// `None` when it is not JSON.
pub(crate) fn parse_usage(body: &[u8]) -> Option<Usage> {
    let envelope: Envelope = serde_json::from_slice(body).ok()?;
    let u = envelope.usage;
    Some(Usage {
        prompt_tokens: u
            .as_ref()
            .and_then(|u| u.prompt_tokens.or(u.input_tokens))
            .unwrap_or(0),
        completion_tokens: u
            .as_ref()
            .and_then(|u| u.completion_tokens.or(u.output_tokens))
            .unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_chat_and_responses_usage_and_rejects_non_json() {
        let chat =
            br#"{"id":"x","usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12}}"#;
        assert_eq!(
            parse_usage(chat),
            Some(Usage {
                prompt_tokens: 9,
                completion_tokens: 3
            })
        );
        let responses = br#"{"usage":{"input_tokens":5,"output_tokens":2}}"#;
        assert_eq!(
            parse_usage(responses),
            Some(Usage {
                prompt_tokens: 5,
                completion_tokens: 2
            })
        );
        assert_eq!(parse_usage(br#"{"data":[]}"#), Some(Usage::default()));
        assert_eq!(parse_usage(br#"{"usage":{"prompt_tokens":9"#), None);
        assert_eq!(parse_usage(b"<html>"), None);
    }
}
