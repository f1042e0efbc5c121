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
    /// Prompt tokens the provider read from its cache (part of `prompt_tokens`, billed at
    /// the cached price).
    pub cached_tokens: u64,
    /// Prompt tokens the provider wrote to its cache (Anthropic's
    /// `cache_creation_input_tokens`; part of `prompt_tokens`, billed above the input
    /// price).
    pub cache_write_tokens: u64,
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
    /// What it cost in US dollars, when the model has a price.
    pub cost: Option<f64>,
}

impl Success {
    /// The body as the caller's own type: bring-your-own response structs, so a field a
    /// provider adds never waits for this crate.
    pub fn json<R: serde::de::DeserializeOwned>(&self) -> serde_json::Result<R> {
        serde_json::from_slice(&self.body)
    }

    /// The answer's text, embedding and finish reason (see [`crate::answer::Answer`]);
    /// empty when the body is not JSON.
    pub fn answer(&self) -> crate::answer::Answer {
        self.json::<serde_json::Value>()
            .map(|v| crate::answer::Answer::of(&v))
            .unwrap_or_default()
    }

    /// The answer's text: chat `message.content`, completions `text`, responses'
    /// output text. `None` for embeddings or a body without one.
    pub fn text(&self) -> Option<String> {
        self.answer().text
    }
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
struct Envelope<'a> {
    #[serde(borrow)]
    model: Option<crate::json_text::Text<'a>>,
    usage: Option<UsageFields>,
}

#[derive(Deserialize)]
struct UsageFields {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    /// OpenAI chat and completions.
    prompt_tokens_details: Option<CachedFields>,
    /// OpenAI responses.
    input_tokens_details: Option<CachedFields>,
    /// Anthropic-compatible servers: cache reads, counted apart from `input_tokens`.
    cache_read_input_tokens: Option<u64>,
    /// Anthropic-compatible servers: cache writes, counted apart from `input_tokens`.
    cache_creation_input_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct CachedFields {
    cached_tokens: Option<u64>,
}

/// A response body's `usage` and `model`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reported<'a> {
    /// The usage (zero when the body has none).
    pub usage: Usage,
    /// The model the server says answered.
    pub model: Option<std::borrow::Cow<'a, str>>,
}

/// Reads `usage` and `model` from a body, and in doing so checks the whole body is one
/// JSON object. `None` when it is not JSON.
pub fn parse_usage(body: &[u8]) -> Option<Reported<'_>> {
    let envelope: Envelope = serde_json::from_slice(body).ok()?;
    let usage = envelope.usage.map_or(Usage::default(), usage_of);
    Some(Reported {
        usage,
        model: envelope.model.map(crate::json_text::Text::into_cow),
    })
}

/// The usage and model of a success record found by their keys, without parsing the rest
/// of it: the last `"usage":` key and the first `"model":` key that are not inside a
/// string (a quote inside a JSON string is escaped, so a key's quote never follows a
/// backslash). A resume reads hundreds of MB of records; this costs a search from the end
/// of each line instead of a second parse of its body. `None` when the line has no usage
/// or it does not read.
pub(crate) fn find_usage(record: &[u8]) -> Option<Reported<'_>> {
    use memchr::memmem::{Finder, FinderRev};
    static USAGE: std::sync::LazyLock<FinderRev<'static>> =
        std::sync::LazyLock::new(|| FinderRev::new(b"\"usage\":"));
    static MODEL: std::sync::LazyLock<Finder<'static>> =
        std::sync::LazyLock::new(|| Finder::new(b"\"model\":"));
    let unescaped = |at: &usize| *at == 0 || record[*at - 1] != b'\\';
    let at = USAGE.rfind_iter(record).find(unescaped)? + USAGE.needle().len();
    let fields = serde_json::Deserializer::from_slice(&record[at..])
        .into_iter::<Option<UsageFields>>()
        .next()?
        .ok()??;
    let model = MODEL.find_iter(record).find(unescaped).and_then(|at| {
        let at = at + MODEL.needle().len();
        serde_json::Deserializer::from_slice(&record[at..])
            .into_iter::<crate::json_text::Text<'_>>()
            .next()?
            .ok()
            .map(crate::json_text::Text::into_cow)
    });
    Some(Reported {
        usage: usage_of(fields),
        model,
    })
}

fn usage_of(u: UsageFields) -> Usage {
    let cache_reads = u.cache_read_input_tokens.unwrap_or(0);
    let cache_writes = u.cache_creation_input_tokens.unwrap_or(0);
    let details = u.prompt_tokens_details.or(u.input_tokens_details);
    Usage {
        // Anthropic's input_tokens exclude cache reads and writes; OpenAI's prompt tokens
        // include cached ones.
        prompt_tokens: u.prompt_tokens.or(u.input_tokens).unwrap_or(0) + cache_reads + cache_writes,
        completion_tokens: u.completion_tokens.or(u.output_tokens).unwrap_or(0),
        cached_tokens: details.and_then(|d| d.cached_tokens).unwrap_or(0) + cache_reads,
        cache_write_tokens: cache_writes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_chat_and_responses_usage_and_rejects_non_json() {
        let chat =
            br#"{"id":"x","usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12}}"#;
        let usage = |b| parse_usage(b).map(|r| r.usage);
        assert_eq!(
            usage(chat),
            Some(Usage {
                prompt_tokens: 9,
                completion_tokens: 3,
                cached_tokens: 0,
                ..Default::default()
            })
        );
        let responses = br#"{"model":"m","usage":{"input_tokens":5,"output_tokens":2,"input_tokens_details":{"cached_tokens":4}}}"#;
        assert_eq!(
            usage(responses),
            Some(Usage {
                prompt_tokens: 5,
                completion_tokens: 2,
                cached_tokens: 4,
                ..Default::default()
            })
        );
        assert_eq!(
            parse_usage(responses).and_then(|r| r.model).as_deref(),
            Some("m")
        );
        let chat_cached = br#"{"usage":{"prompt_tokens":2000,"completion_tokens":1,"prompt_tokens_details":{"cached_tokens":1024}}}"#;
        assert_eq!(usage(chat_cached).map(|u| u.cached_tokens), Some(1024));
        let anthropic = br#"{"usage":{"input_tokens":10,"cache_read_input_tokens":90,"cache_creation_input_tokens":20,"output_tokens":5}}"#;
        assert_eq!(
            usage(anthropic),
            Some(Usage {
                prompt_tokens: 120,
                completion_tokens: 5,
                cached_tokens: 90,
                cache_write_tokens: 20,
            })
        );
        assert_eq!(usage(br#"{"data":[]}"#), Some(Usage::default()));
        // In a record, found by key; a "usage" inside the answer's text is not a key.
        let record = br#"{"id":"b","custom_id":"c","line":1,"response":{"status_code":200,"body":{"model":"gpt-4o-mini","choices":[{"message":{"content":"say \"usage\": {\"prompt_tokens\": 99}"}}],"usage":{"prompt_tokens":7,"completion_tokens":2,"prompt_tokens_details":{"cached_tokens":3}}}},"error":null}"#;
        let found = find_usage(record).unwrap();
        assert_eq!(found.model.as_deref(), Some("gpt-4o-mini"));
        assert_eq!(
            found.usage,
            Usage {
                prompt_tokens: 7,
                completion_tokens: 2,
                cached_tokens: 3,
                ..Default::default()
            }
        );
        assert!(find_usage(br#"{"response":{"body":{"data":[]}}}"#).is_none());
        assert!(find_usage(br#"{"response":{"body":{"usage":"odd"}}}"#).is_none());
        assert_eq!(parse_usage(br#"{"usage":{"prompt_tokens":9"#), None);
        assert_eq!(parse_usage(b"<html>"), None);
    }
}
