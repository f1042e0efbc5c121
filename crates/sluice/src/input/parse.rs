//! Turning one input line into a request: the OpenAI Batch line format, or a plain prompt.

use std::fmt;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::json_text::Text;
use crate::request::{Endpoint, Request};

/// Why a line could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum LineErrorKind {
    /// Longer than the allowed line length.
    TooLong,
    /// Not valid UTF-8.
    InvalidUtf8,
    /// Not valid JSON, or not a JSON object.
    InvalidJson,
    /// Nothing on the line.
    Blank,
    /// `custom_id` missing, empty or not a string.
    MissingCustomId,
    /// `method` is not `POST`.
    BadMethod,
    /// `url` missing or not an endpoint sluice sends to.
    BadUrl,
    /// `body` missing or not a JSON object.
    BadBody,
    /// `priority` not an integer or `high`/`normal`/`low`.
    BadPriority,
    /// `"stream": true` in the body: a batch reads whole answers, not streams.
    Streaming,
}

impl LineErrorKind {
    /// A short name for summaries.
    pub fn name(self) -> &'static str {
        match self {
            LineErrorKind::TooLong => "line_too_long",
            LineErrorKind::InvalidUtf8 => "invalid_utf8",
            LineErrorKind::InvalidJson => "invalid_json",
            LineErrorKind::Blank => "blank_line",
            LineErrorKind::MissingCustomId => "missing_custom_id",
            LineErrorKind::BadMethod => "bad_method",
            LineErrorKind::BadUrl => "bad_url",
            LineErrorKind::BadBody => "bad_body",
            LineErrorKind::BadPriority => "bad_priority",
            LineErrorKind::Streaming => "stream_not_supported",
        }
    }
}

impl fmt::Display for LineErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A line that could not be used, with where it was and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct LineError {
    /// The input's name (a path, or `<stdin>`).
    pub file: String,
    /// 1-based line number.
    pub line: u64,
    /// The line's `custom_id`, if it could be read.
    pub custom_id: Option<String>,
    /// Why.
    pub kind: LineErrorKind,
    /// What to do about it, for people.
    pub message: String,
}

/// Options that make a chat body from a plain prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct PromptOptions {
    /// The model.
    pub model: String,
    /// An optional system message before each prompt.
    pub system: Option<String>,
    /// `max_tokens`, if set.
    pub max_tokens: Option<u64>,
    /// `temperature`, if set.
    pub temperature: Option<f64>,
}

#[derive(Deserialize)]
struct BatchLine<'a> {
    #[serde(default, borrow)]
    custom_id: Option<&'a RawValue>,
    #[serde(default, borrow)]
    method: Option<Text<'a>>,
    #[serde(default, borrow)]
    url: Option<Text<'a>>,
    #[serde(default, borrow)]
    body: Option<&'a RawValue>,
    /// Anthropic's Message Batches line: the Messages request, in place of `url` and
    /// `body`.
    #[serde(default, borrow)]
    params: Option<&'a RawValue>,
    #[serde(default)]
    priority: Option<Value>,
}

pub(crate) type Parsed = Result<Request, (LineErrorKind, Option<String>, String)>;

/// Parses a priority: an integer, or `high` (10), `normal` (0), `low` (-10).
pub fn parse_priority(v: &Value) -> Option<i32> {
    match v {
        Value::Number(n) => n.as_i64().and_then(|n| i32::try_from(n).ok()),
        Value::String(s) => match s.as_str() {
            "high" => Some(10),
            "normal" => Some(0),
            "low" => Some(-10),
            other => other.parse().ok(),
        },
        _ => None,
    }
}

fn text_of(bytes: &[u8]) -> Result<&str, (LineErrorKind, Option<String>, String)> {
    std::str::from_utf8(bytes).map_err(|e| {
        (
            LineErrorKind::InvalidUtf8,
            None,
            format!(
                "invalid UTF-8 at byte {}; save the file as UTF-8",
                e.valid_up_to()
            ),
        )
    })
}

/// Parses a Batch API line (`custom_id`, `method`, `url`, `body`, optional `priority`), or
/// an Anthropic Message Batches line (`custom_id`, `params`), which is a `/v1/messages`
/// request.
pub(crate) fn parse_batch_line(bytes: &[u8]) -> Parsed {
    let text = text_of(bytes)?;
    if text.trim().is_empty() {
        return Err((
            LineErrorKind::Blank,
            None,
            "blank line; remove it".to_owned(),
        ));
    }
    if !text.trim_start().starts_with('{') {
        return Err((
            LineErrorKind::InvalidJson,
            None,
            "not a JSON object; each line must be one JSON object".to_owned(),
        ));
    }
    let line: BatchLine = serde_json::from_str(text).map_err(|e| {
        (
            LineErrorKind::InvalidJson,
            None,
            format!("invalid JSON ({e}); each line must be one JSON object"),
        )
    })?;
    // Most ids are plain strings: the text between the quotes, with no escape to decode,
    // needs no second parse.
    let custom_id = match line.custom_id.and_then(|raw| plain_string(raw.get())) {
        Some(id) => id,
        None => custom_id_of(line.custom_id, text)?,
    };
    let fail = |kind, message: String| Err((kind, Some(custom_id.clone()), message));
    match line.method.as_deref() {
        None | Some("POST") => {}
        Some(other) => {
            return fail(
                LineErrorKind::BadMethod,
                format!("method `{other}` is not supported; use \"POST\""),
            );
        }
    }
    // Anthropic's batch line: `params` is the body of a Messages request.
    let anthropic = line.body.is_none() && line.params.is_some();
    let endpoint: Endpoint = match line.url.as_deref().map(str::parse) {
        None if anthropic => Endpoint::Messages,
        Some(Ok(e)) => e,
        Some(Err(message)) => return fail(LineErrorKind::BadUrl, message),
        None => {
            return fail(
                LineErrorKind::BadUrl,
                "missing `url`, for example \"/v1/chat/completions\"".to_owned(),
            );
        }
    };
    let field = if anthropic { "params" } else { "body" };
    let body = match line.body.or(line.params) {
        Some(raw) if raw.get().starts_with('{') => Bytes::copy_from_slice(raw.get().as_bytes()),
        Some(_) => {
            return fail(
                LineErrorKind::BadBody,
                format!("`{field}` must be a JSON object"),
            );
        }
        None => return fail(LineErrorKind::BadBody, "missing `body`".to_owned()),
    };
    if streams(&body) {
        return fail(
            LineErrorKind::Streaming,
            "`\"stream\": true` is not supported in a batch (each answer is written whole); \
             remove it from the body"
                .to_owned(),
        );
    }
    let priority = match &line.priority {
        None | Some(Value::Null) => 0,
        Some(v) => match parse_priority(v) {
            Some(p) => p,
            None => {
                return fail(
                    LineErrorKind::BadPriority,
                    format!("priority {v} must be an integer or high, normal, low"),
                );
            }
        },
    };
    Ok(Request {
        custom_id,
        endpoint,
        body,
        priority,
        tag: 0,
    })
}

/// A `custom_id` that is not a plain string: decoded, or why it cannot be used.
fn custom_id_of(
    raw: Option<&RawValue>,
    text: &str,
) -> Result<String, (LineErrorKind, Option<String>, String)> {
    match raw.map(|raw| serde_json::from_str::<Value>(raw.get())) {
        Some(Ok(Value::String(s))) if !s.is_empty() => Ok(s),
        other => {
            let what = match other {
                // serde reads `null` as absent.
                None if text.contains("\"custom_id\"") => "`custom_id` is null".to_owned(),
                None => "missing `custom_id`".to_owned(),
                Some(Ok(Value::String(_))) => "`custom_id` is empty".to_owned(),
                Some(Ok(Value::Number(n))) => {
                    format!("`custom_id` is a number ({n}), not a string; write it as \"{n}\"")
                }
                Some(Ok(Value::Null)) => "`custom_id` is null".to_owned(),
                Some(Ok(Value::Bool(b))) => format!("`custom_id` is a boolean ({b})"),
                Some(Ok(Value::Array(_))) => "`custom_id` is an array".to_owned(),
                Some(Ok(Value::Object(_))) => "`custom_id` is an object".to_owned(),
                Some(Err(_)) => "`custom_id` cannot be read".to_owned(),
            };
            Err((
                LineErrorKind::MissingCustomId,
                None,
                format!("{what}; every line needs a unique, non-empty string custom_id"),
            ))
        }
    }
}

/// A JSON string's text when it is not empty and holds no escape (which then needs no
/// decoding); `None` for anything else.
fn plain_string(raw: &str) -> Option<String> {
    let text = raw.strip_prefix('"')?.strip_suffix('"')?;
    (!text.is_empty() && !text.contains('\\')).then(|| text.to_owned())
}

/// Whether a body asks for a streamed answer.
fn streams(body: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct StreamOnly {
        stream: Option<Value>,
    }
    // Built once: `memmem::find` would build its searcher again for every line.
    static KEY: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\"stream\""));
    KEY.find(body).is_some()
        && serde_json::from_slice::<StreamOnly>(body)
            .is_ok_and(|b| b.stream == Some(Value::Bool(true)))
}

/// Makes a chat request from a plain prompt; its id is its line number.
pub(crate) fn parse_prompt_line(bytes: &[u8], line: u64, options: &PromptOptions) -> Parsed {
    let text = text_of(bytes)?;
    if text.trim().is_empty() {
        return Err((
            LineErrorKind::Blank,
            None,
            "blank line; remove it".to_owned(),
        ));
    }
    let mut messages = Vec::with_capacity(2);
    if let Some(system) = &options.system {
        messages.push(serde_json::json!({"role": "system", "content": system}));
    }
    messages.push(serde_json::json!({"role": "user", "content": text}));
    let mut body = serde_json::json!({"model": options.model, "messages": messages});
    if let Some(m) = options.max_tokens {
        body["max_tokens"] = m.into();
    }
    if let Some(t) = options.temperature {
        body["temperature"] = t.into();
    }
    Ok(Request::chat(line.to_string(), &body))
}

/// Whether a line is meant as a Batch API line: it starts a JSON object. Plain prompts
/// do not (a prompt file whose lines start with `{` needs `--format prompts`).
pub(crate) fn looks_like_batch(bytes: &[u8]) -> bool {
    bytes.trim_ascii_start().starts_with(b"{")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(p: Parsed) -> LineErrorKind {
        p.unwrap_err().0
    }

    #[test]
    fn parses_a_batch_line() {
        let r = parse_batch_line(br#"{"custom_id":"a","method":"POST","url":"/v1/embeddings","body":{"model":"m","input":"x"},"priority":"high"}"#).unwrap();
        assert_eq!(r.custom_id, "a");
        assert_eq!(r.endpoint, Endpoint::Embeddings);
        assert_eq!(&r.body[..], br#"{"model":"m","input":"x"}"#);
        assert_eq!(r.priority, 10);
    }

    #[test]
    fn reads_anthropic_message_batches_lines_as_messages_requests() {
        let r = parse_batch_line(br#"{"custom_id":"q1","params":{"model":"claude-haiku-4-5","max_tokens":64,"messages":[{"role":"user","content":"Hi"}]}}"#).unwrap();
        assert_eq!(
            (r.custom_id.as_str(), r.endpoint),
            ("q1", Endpoint::Messages)
        );
        assert!(r.body.starts_with(br#"{"model":"claude-haiku-4-5""#));
        assert_eq!(
            kind(parse_batch_line(br#"{"custom_id":"q2","params":[1]}"#)),
            LineErrorKind::BadBody
        );
        // A `body` line that names the endpoint is the same request.
        let same = parse_batch_line(br#"{"custom_id":"q3","url":"/v1/messages","body":{"model":"m","max_tokens":1,"messages":[]}}"#).unwrap();
        assert_eq!(same.endpoint, Endpoint::Messages);
    }

    #[test]
    fn names_what_is_wrong() {
        assert_eq!(kind(parse_batch_line(b"{nope")), LineErrorKind::InvalidJson);
        assert_eq!(kind(parse_batch_line(b"[1]")), LineErrorKind::InvalidJson);
        assert_eq!(kind(parse_batch_line(b"  ")), LineErrorKind::Blank);
        assert_eq!(
            kind(parse_batch_line(&[b'"', 0xff, b'"'])),
            LineErrorKind::InvalidUtf8
        );
        assert_eq!(
            kind(parse_batch_line(br#"{"url":"/v1/embeddings","body":{}}"#)),
            LineErrorKind::MissingCustomId
        );
        assert_eq!(
            kind(parse_batch_line(
                br#"{"custom_id":7,"url":"/v1/embeddings","body":{}}"#
            )),
            LineErrorKind::MissingCustomId
        );
        assert_eq!(
            kind(parse_batch_line(
                br#"{"custom_id":"a","method":"GET","url":"/v1/embeddings","body":{}}"#
            )),
            LineErrorKind::BadMethod
        );
        let bad_url =
            parse_batch_line(br#"{"custom_id":"a","url":"/v1/images","body":{}}"#).unwrap_err();
        assert_eq!(bad_url.0, LineErrorKind::BadUrl);
        assert_eq!(bad_url.1.as_deref(), Some("a"));
        assert_eq!(
            kind(parse_batch_line(
                br#"{"custom_id":"a","url":"/v1/embeddings","body":"x"}"#
            )),
            LineErrorKind::BadBody
        );
        assert_eq!(
            kind(parse_batch_line(
                br#"{"custom_id":"a","url":"/v1/embeddings","body":{},"priority":"urgent"}"#
            )),
            LineErrorKind::BadPriority
        );
    }

    #[test]
    fn builds_chat_bodies_from_prompts() {
        let options = PromptOptions {
            model: "gpt-4o-mini".into(),
            system: Some("be brief".into()),
            max_tokens: Some(20),
            temperature: Some(0.5),
        };
        let r = parse_prompt_line(b"what is rust?", 7, &options).unwrap();
        assert_eq!(r.custom_id, "7");
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["messages"][0]["role"], "system");
        assert_eq!(body["messages"][1]["content"], "what is rust?");
        assert_eq!(body["max_tokens"], 20);
        assert_eq!(body["temperature"], 0.5);
    }

    #[test]
    fn detects_the_format() {
        assert!(looks_like_batch(br#"{"custom_id":"a"}"#));
        assert!(looks_like_batch(b"  {oops"));
        assert!(!looks_like_batch(b"tell me a joke"));
    }

    #[test]
    fn streaming_bodies_and_odd_custom_ids_are_named() {
        let streamed = parse_batch_line(
            br#"{"custom_id":"a","url":"/v1/chat/completions","body":{"model":"m","stream":true}}"#,
        )
        .unwrap_err();
        assert_eq!(streamed.0, LineErrorKind::Streaming);
        assert!(parse_batch_line(
            br#"{"custom_id":"a","url":"/v1/chat/completions","body":{"model":"m","stream":false}}"#
        )
        .is_ok());
        for (id, kind) in [("5", "number"), ("null", "null"), ("\"\"", "empty")] {
            let line = format!(r#"{{"custom_id":{id},"url":"/v1/embeddings","body":{{}}}}"#);
            let (k, _, message) = parse_batch_line(line.as_bytes()).unwrap_err();
            assert_eq!(k, LineErrorKind::MissingCustomId);
            assert!(message.contains(kind), "{message}");
        }
    }

    #[test]
    fn an_id_is_read_whole_with_or_without_escapes() {
        for (written, id) in [
            (r#""r-1 é""#, "r-1 é"),
            (r#""a\"b""#, "a\"b"),
            (r#""tab\there""#, "tab\there"),
            (r#""\u00e9""#, "é"),
        ] {
            let line = format!(r#"{{"custom_id":{written},"url":"/v1/embeddings","body":{{}}}}"#);
            let request = parse_batch_line(line.as_bytes()).unwrap();
            assert_eq!(request.custom_id, id, "{written}");
        }
    }
}
