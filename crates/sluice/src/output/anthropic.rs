//! Anthropic's Message Batches result line format, on request (`--output-format
//! anthropic`):
//! `{"custom_id", "result": {"type": "succeeded", "message": {...}}}` or
//! `{"custom_id", "result": {"type": "errored", "error": {"type": "error", "error": {"type",
//! "message"}}}}`.
//!
//! sluice's own keys stay around it, where resume looks for them: `id`, `custom_id` and
//! `line` first, `error` last (`null`, or sluice's classified code); readers of Anthropic's
//! format ignore keys they do not know.

use serde::Serialize;
use serde_json::value::RawValue;

use crate::error::{ErrorKind, RequestError};
use crate::outcome::Success;

/// Appends a success line (with its newline) to `out`.
pub fn write_success(out: &mut Vec<u8>, id: &str, custom_id: &str, line: Option<u64>, s: &Success) {
    prefix(out, id, Some(custom_id), line);
    out.extend_from_slice(b",\"result\":{\"type\":\"succeeded\",\"message\":");
    match one_line_json(&s.body) {
        Some(raw) => out.extend_from_slice(raw.as_bytes()),
        None => {
            let _ = serde_json::to_writer(&mut *out, &String::from_utf8_lossy(&s.body));
        }
    }
    out.extend_from_slice(b"},\"error\":null}\n");
}

/// Appends a failure line (with its newline) to `out`: the server's own Anthropic error
/// object when it sent one, else one made from the classified kind.
pub fn write_error(
    out: &mut Vec<u8>,
    id: &str,
    custom_id: Option<&str>,
    line: Option<u64>,
    e: &RequestError,
) {
    #[derive(Serialize)]
    struct Made<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        error: Inner<'a>,
    }
    #[derive(Serialize)]
    struct Inner<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        message: &'a str,
    }
    #[derive(Serialize)]
    struct Ours<'a> {
        code: &'a str,
        message: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        gave_up: Option<&'static str>,
    }
    let message = e.full_message();
    prefix(out, id, custom_id, line);
    out.extend_from_slice(b",\"result\":{\"type\":\"errored\",\"error\":");
    match e.body.as_deref().and_then(servers_error) {
        Some(raw) => out.extend_from_slice(raw.as_bytes()),
        None => {
            let made = Made {
                kind: "error",
                error: Inner {
                    kind: error_type(e),
                    message: &message,
                },
            };
            let _ = serde_json::to_writer(&mut *out, &made);
        }
    }
    out.extend_from_slice(b"},\"error\":");
    let ours = Ours {
        code: e.kind.code(),
        message: &message,
        gave_up: e.gave_up.map(|g| g.code()),
    };
    let _ = serde_json::to_writer(&mut *out, &ours);
    out.extend_from_slice(b"}\n");
}

fn prefix(out: &mut Vec<u8>, id: &str, custom_id: Option<&str>, line: Option<u64>) {
    out.extend_from_slice(b"{\"id\":");
    let _ = serde_json::to_writer(&mut *out, id);
    out.extend_from_slice(b",\"custom_id\":");
    let _ = serde_json::to_writer(&mut *out, &custom_id);
    if let Some(line) = line {
        out.extend_from_slice(b",\"line\":");
        out.extend_from_slice(line.to_string().as_bytes());
    }
}

/// The body as one line of JSON, if it is JSON.
fn one_line_json(body: &[u8]) -> Option<String> {
    let raw: &RawValue = serde_json::from_slice(body).ok()?;
    if memchr::memchr2(b'\n', b'\r', raw.get().as_bytes()).is_none() {
        return Some(raw.get().to_owned());
    }
    let v: serde_json::Value = serde_json::from_str(raw.get()).ok()?;
    Some(v.to_string())
}

/// An Anthropic error body (`{"type": "error", "error": {...}}`), as one line.
fn servers_error(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    (v["type"] == "error" && v["error"]["type"].is_string()).then(|| v.to_string())
}

/// Anthropic's error type for a failure it did not describe itself.
fn error_type(e: &RequestError) -> &'static str {
    match e.kind {
        ErrorKind::RateLimited => "rate_limit_error",
        ErrorKind::Auth if e.status == Some(403) => "permission_error",
        ErrorKind::Auth => "authentication_error",
        ErrorKind::NotFound => "not_found_error",
        ErrorKind::PaymentRequired | ErrorKind::InsufficientQuota | ErrorKind::SpendCap => {
            "billing_error"
        }
        ErrorKind::Server if e.status == Some(529) => "overloaded_error",
        ErrorKind::InvalidRequest
        | ErrorKind::InvalidInput
        | ErrorKind::DuplicateId
        | ErrorKind::TooLarge => "invalid_request_error",
        ErrorKind::ResponseTooLarge => "request_too_large",
        _ => "api_error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::identify;
    use bytes::Bytes;
    use serde_json::Value;

    #[test]
    fn success_and_failure_lines_read_as_anthropics_and_as_sluices_records() {
        let s = Success {
            status: 200,
            request_id: None,
            body: Bytes::from_static(
                br#"{"type":"message","content":[{"type":"text","text":"Hi"}],"usage":{"input_tokens":3,"output_tokens":1}}"#,
            ),
            usage: Default::default(),
            cost: None,
        };
        let mut out = Vec::new();
        write_success(&mut out, "b1", "q1", Some(2), &s);
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["custom_id"], "q1");
        assert_eq!(v["result"]["type"], "succeeded");
        assert_eq!(v["result"]["message"]["content"][0]["text"], "Hi");
        let id = identify(out.trim_ascii()).unwrap();
        assert_eq!((id.line, id.error_code), (Some(2), None));

        let mut e = RequestError::new(ErrorKind::RateLimited, "HTTP 429");
        e.status = Some(429);
        e.body = Some(Bytes::from_static(
            br#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}"#,
        ));
        let mut out = Vec::new();
        write_error(&mut out, "b2", Some("q2"), Some(3), &e);
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["result"]["type"], "errored");
        assert_eq!(v["result"]["error"]["error"]["message"], "slow down");
        assert_eq!(v["error"]["code"], "rate_limited");
        let id = identify(out.trim_ascii()).unwrap();
        assert_eq!(id.error_code.as_deref(), Some("rate_limited"));

        // A failure the server did not describe in Anthropic's words gets them made.
        let mut out = Vec::new();
        let e = RequestError::new(ErrorKind::Timeout, "no answer in 600 s");
        write_error(&mut out, "b3", Some("q3"), Some(4), &e);
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["result"]["error"]["error"]["type"], "api_error");
        assert_eq!(v["result"]["error"]["type"], "error");
    }
}
