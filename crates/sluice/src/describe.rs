//! Messages for people from what a server said: its own words from an error body, in the
//! shapes providers use, kept short.

use serde::Deserialize;
use serde_json::Value;

/// The most characters of a server's words kept in a message.
const MAX_WORDS: usize = 300;

/// A body a server sent with an error: OpenAI's and Anthropic's `{"error": {"message"}}`,
/// Gemini's list of those, `{"message"}` (vLLM), `{"detail"}` (FastAPI), `{"error": "..."}`,
/// or the start of a plain-text body. `None` when there are no words (an empty body).
pub(crate) fn server_words(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Shape {
        error: Option<Value>,
        message: Option<Value>,
        detail: Option<Value>,
    }
    let text = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(items)) => items.into_iter().find_map(|v| words_of(&v)),
        Ok(v @ Value::Object(_)) => serde_json::from_value::<Shape>(v).ok().and_then(|s| {
            s.error
                .as_ref()
                .and_then(words_of)
                .or_else(|| s.message.as_ref().and_then(as_text))
                .or_else(|| s.detail.as_ref().and_then(as_text))
        }),
        Ok(other) => as_text(&other),
        Err(_) => {
            let raw = String::from_utf8_lossy(body);
            let plain = strip_tags(&raw);
            (!plain.is_empty()).then_some(plain)
        }
    }?;
    Some(shorten(
        text.split_whitespace().collect::<Vec<_>>().join(" "),
    ))
}

/// The words of an `error` value: a string, or an object with a `message`.
fn words_of(v: &Value) -> Option<String> {
    match v {
        Value::Object(map) => map
            .get("message")
            .and_then(as_text)
            .or_else(|| map.get("error").and_then(words_of)),
        other => as_text(other),
    }
}

fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Null | Value::String(_) => None,
        other => Some(other.to_string()),
    }
}

/// Text with `<...>` markup left out (an HTML error page), trimmed.
fn strip_tags(raw: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in raw.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
        if out.len() > MAX_WORDS * 4 {
            break;
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn shorten(mut text: String) -> String {
    if text.chars().count() > MAX_WORDS {
        text = text.chars().take(MAX_WORDS).collect();
        text.push('…');
    }
    text
}

/// A body for an error record: whole when small, else its start as text.
pub(crate) fn keep_for_record(body: bytes::Bytes, limit: usize) -> bytes::Bytes {
    if body.len() <= limit {
        return body;
    }
    let mut cut = limit;
    while cut > 0 && (body[cut] & 0xC0) == 0x80 {
        cut -= 1; // do not split a UTF-8 character
    }
    let mut kept = body[..cut].to_vec();
    kept.extend_from_slice("… (cut)".as_bytes());
    bytes::Bytes::from(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_words_in_each_providers_shape() {
        let openai = br#"{"error":{"message":"Incorrect API key provided: sk-...","type":"invalid_request_error","code":"invalid_api_key"}}"#;
        assert_eq!(
            server_words(openai).as_deref(),
            Some("Incorrect API key provided: sk-...")
        );
        let anthropic =
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
        assert_eq!(server_words(anthropic).as_deref(), Some("Overloaded"));
        let gemini = br#"[{"error":{"code":429,"message":"Resource has been exhausted","status":"RESOURCE_EXHAUSTED"}}]"#;
        assert_eq!(
            server_words(gemini).as_deref(),
            Some("Resource has been exhausted")
        );
        let vllm = br#"{"object":"error","message":"The model `x` does not exist.","type":"NotFoundError","code":404}"#;
        assert_eq!(
            server_words(vllm).as_deref(),
            Some("The model `x` does not exist.")
        );
        assert_eq!(
            server_words(br#"{"detail":"Not Found"}"#).as_deref(),
            Some("Not Found")
        );
        assert_eq!(
            server_words(b"<html><body><h1>502 Bad Gateway</h1></body></html>").as_deref(),
            Some("502 Bad Gateway")
        );
        assert_eq!(server_words(b""), None);
        assert_eq!(server_words(br#"{"error":{"message":""}}"#), None);
        let long = "x".repeat(1000);
        assert_eq!(
            server_words(long.as_bytes()).unwrap().chars().count(),
            MAX_WORDS + 1
        );
    }

    #[test]
    fn record_bodies_are_cut_on_a_character_boundary() {
        let body = bytes::Bytes::from("é".repeat(100));
        let kept = keep_for_record(body, 51);
        assert!(std::str::from_utf8(&kept).is_ok());
        assert!(kept.len() < 70);
        let small = bytes::Bytes::from_static(b"{}");
        assert_eq!(keep_for_record(small.clone(), 10), small);
    }
}
