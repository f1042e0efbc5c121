//! The record lines of a run: OpenAI's Batch output line format by default,
//! `{"id", "custom_id", "response": {"status_code", "request_id", "body"}, "error"}`, or
//! Anthropic's Message Batches result format on request ([`anthropic`]).
//!
//! Bodies are copied through as the server sent them when they are already one line of
//! JSON, so writing a result costs a copy, not a parse and a re-serialisation.

pub mod anthropic;

use serde::Serialize;
use serde_json::value::RawValue;

use crate::error::RequestError;
use crate::outcome::{BatchResult, Success};

#[derive(Serialize)]
struct Line<'a> {
    id: &'a str,
    custom_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<u64>,
    response: Option<ResponsePart<'a>>,
    error: Option<ErrorPart<'a>>,
}

#[derive(Serialize)]
struct ResponsePart<'a> {
    status_code: u16,
    request_id: Option<&'a str>,
    body: Body<'a>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Body<'a> {
    Raw(&'a RawValue),
    Owned(Box<RawValue>),
    Text(String),
    Null(Option<()>),
}

#[derive(Serialize)]
struct ErrorPart<'a> {
    code: &'a str,
    message: &'a str,
    /// Why retrying stopped ([`crate::retry::GiveUp::code`]), when the policy wrote the
    /// request off.
    #[serde(skip_serializing_if = "Option::is_none")]
    gave_up: Option<&'static str>,
}

/// A body fit for one JSONL line: raw when it is JSON without line breaks, re-serialised
/// when it is JSON with them, a string when it is not JSON at all.
fn body(bytes: &[u8]) -> Body<'_> {
    if bytes.is_empty() {
        return Body::Null(None);
    }
    let has_newline = bytes.iter().any(|&b| b == b'\n' || b == b'\r');
    match serde_json::from_slice::<&RawValue>(bytes) {
        Ok(raw) if !has_newline => Body::Raw(raw),
        _ => match serde_json::from_slice::<serde_json::Value>(bytes) {
            Ok(v) => RawValue::from_string(v.to_string()).map_or(Body::Null(None), Body::Owned),
            Err(_) => Body::Text(String::from_utf8_lossy(bytes).into_owned()),
        },
    }
}

/// Appends a success line (with its newline) to `out`; `line` is the input line number.
///
/// A success's body was fully parsed when its usage was read, so when it holds no line
/// break it is copied as it is, without parsing it again.
pub fn write_success(out: &mut Vec<u8>, id: &str, custom_id: &str, line: Option<u64>, s: &Success) {
    if !s.body.is_empty() && memchr::memchr2(b'\n', b'\r', &s.body).is_none() {
        // The same fields in the same order as `Line`, written by hand around the raw body.
        out.extend_from_slice(b"{\"id\":");
        let _ = serde_json::to_writer(&mut *out, id);
        out.extend_from_slice(b",\"custom_id\":");
        let _ = serde_json::to_writer(&mut *out, custom_id);
        if let Some(line) = line {
            out.extend_from_slice(b",\"line\":");
            let _ = serde_json::to_writer(&mut *out, &line);
        }
        out.extend_from_slice(b",\"response\":{\"status_code\":");
        let _ = serde_json::to_writer(&mut *out, &s.status);
        out.extend_from_slice(b",\"request_id\":");
        let _ = serde_json::to_writer(&mut *out, &s.request_id);
        out.extend_from_slice(b",\"body\":");
        out.extend_from_slice(s.body.trim_ascii());
        out.extend_from_slice(b"},\"error\":null}\n");
        return;
    }
    let line = Line {
        id,
        custom_id: Some(custom_id),
        line,
        response: Some(ResponsePart {
            status_code: s.status,
            request_id: s.request_id.as_deref(),
            body: body(&s.body),
        }),
        error: None,
    };
    write(out, &line);
}

/// Appends an error line (with its newline) to `out`. `custom_id` is `None` for an input
/// line that had none; `line` is the input line number for input errors.
pub fn write_error(
    out: &mut Vec<u8>,
    id: &str,
    custom_id: Option<&str>,
    line: Option<u64>,
    e: &RequestError,
) {
    let response = e.status.map(|status_code| ResponsePart {
        status_code,
        request_id: e.request_id.as_deref(),
        body: e.body.as_deref().map_or(Body::Null(None), body),
    });
    let record = Line {
        id,
        custom_id,
        line,
        response,
        error: Some(ErrorPart {
            code: e.kind.code(),
            message: &e.full_message(),
            gave_up: e.gave_up.map(|g| g.code()),
        }),
    };
    write(out, &record);
}

/// The shape of the record lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RecordFormat {
    /// OpenAI's Batch output format.
    #[default]
    OpenAi,
    /// Anthropic's Message Batches result format ([`anthropic`]).
    Anthropic,
}

impl std::str::FromStr for RecordFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "openai" => Ok(RecordFormat::OpenAi),
            "anthropic" => Ok(RecordFormat::Anthropic),
            other => Err(format!(
                "unknown output format `{other}`; expected openai or anthropic"
            )),
        }
    }
}

/// Appends the line for a batch result in `format`; `line` is the input line number.
pub fn write_result(
    out: &mut Vec<u8>,
    format: RecordFormat,
    id: &str,
    line: Option<u64>,
    r: &BatchResult,
) {
    match (&r.outcome, format) {
        (Ok(s), RecordFormat::OpenAi) => write_success(out, id, &r.custom_id, line, s),
        (Ok(s), RecordFormat::Anthropic) => {
            anthropic::write_success(out, id, &r.custom_id, line, s)
        }
        (Err(e), format) => write_failure(out, format, id, Some(&r.custom_id), line, e),
    }
}

/// Appends a failure line in `format`.
pub fn write_failure(
    out: &mut Vec<u8>,
    format: RecordFormat,
    id: &str,
    custom_id: Option<&str>,
    line: Option<u64>,
    e: &RequestError,
) {
    match format {
        RecordFormat::OpenAi => write_error(out, id, custom_id, line, e),
        RecordFormat::Anthropic => anthropic::write_error(out, id, custom_id, line, e),
    }
}

fn write(out: &mut Vec<u8>, line: &Line<'_>) {
    // Serialising plain structs into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, line);
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::outcome::Usage;
    use bytes::Bytes;
    use serde_json::Value;

    fn success(body: &'static [u8]) -> Success {
        Success {
            status: 200,
            request_id: Some("req_1".into()),
            body: Bytes::from_static(body),
            usage: Usage::default(),
            cost: None,
        }
    }

    #[test]
    fn success_line_has_the_batch_shape_and_the_raw_body() {
        let mut out = Vec::new();
        write_success(
            &mut out,
            "batch_req_1",
            "r1",
            Some(4),
            &success(br#"{"choices":[{"x":1}]}"#),
        );
        let text = String::from_utf8(out).unwrap();
        assert!(text.ends_with('\n') && text.matches('\n').count() == 1);
        assert!(text.contains(r#""body":{"choices":[{"x":1}]}"#), "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["custom_id"], "r1");
        assert!(
            text.starts_with(r#"{"id":"batch_req_1","custom_id":"r1","line":4,"#),
            "{text}"
        );
        assert_eq!(v["response"]["status_code"], 200);
        assert_eq!(v["response"]["request_id"], "req_1");
        assert_eq!(v["error"], Value::Null);
    }

    #[test]
    fn the_raw_fast_path_writes_what_serde_would() {
        let raw = br#"{"a":"x\u00e9","b":[1,2]}"#;
        let mut fast = Vec::new();
        write_success(&mut fast, "b\"1", "r\\2", Some(9), &success(raw));
        // A trailing newline in the body forces the serde path.
        let slow_body: &'static [u8] = br#"{"a":"x\u00e9","b":[1,2]}
"#;
        let mut slow = Vec::new();
        write_success(&mut slow, "b\"1", "r\\2", Some(9), &success(slow_body));
        let (f, s): (Value, Value) = (
            serde_json::from_slice(&fast).unwrap(),
            serde_json::from_slice(&slow).unwrap(),
        );
        assert_eq!(f, s);
        assert!(fast.ends_with(b"}\n") && fast.iter().filter(|&&b| b == b'\n').count() == 1);
    }

    #[test]
    fn pretty_bodies_become_one_line_and_non_json_becomes_a_string() {
        let mut out = Vec::new();
        write_success(&mut out, "b", "r", None, &success(b"{\n  \"a\": 1\n}\n"));
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1);
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["response"]["body"]["a"], 1);
        let mut out = Vec::new();
        let mut e = RequestError::new(ErrorKind::Server, "502 after 8 attempts");
        e.status = Some(502);
        e.body = Some(Bytes::from_static(b"<html>bad\ngateway</html>"));
        write_error(&mut out, "b", Some("r"), None, &e);
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["response"]["body"], "<html>bad\ngateway</html>");
        assert_eq!(v["error"]["code"], "server_error");
    }

    #[test]
    fn input_errors_carry_the_line_and_no_response() {
        let mut out = Vec::new();
        let e = RequestError::new(ErrorKind::InvalidInput, "input.jsonl:7: invalid JSON");
        write_error(&mut out, "b", None, Some(7), &e);
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["custom_id"], Value::Null);
        assert_eq!(v["line"], 7);
        assert_eq!(v["response"], Value::Null);
        assert_eq!(v["error"]["code"], "invalid_input");
    }
}
