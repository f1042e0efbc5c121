//! One exported row: what a person wants of a record (the answer's text or embedding,
//! why it stopped, tokens, cost, the error), read from an OpenAI Batch output line.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sluice::cost::PriceTable;

/// A record reduced to the export's columns.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Row {
    /// The input line (records without one sort last, in the order read).
    pub line: Option<u64>,
    /// Order of reading, to keep records without a line in file order.
    #[serde(skip_serializing_if = "is_zero", default)]
    pub seq: u64,
    pub custom_id: Option<String>,
    /// The record is a failure.
    pub failed: bool,
    /// The answer's text (chat, completions, responses).
    pub text: Option<String>,
    /// The embedding, as JSON text (embeddings).
    pub embedding: Option<String>,
    pub finish_reason: Option<String>,
    pub model: Option<String>,
    pub prompt_tokens: Option<u64>,
    pub cached_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
    /// Dollars, when the model has a price.
    pub cost_usd: Option<f64>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Deserialize)]
struct Record {
    custom_id: Option<String>,
    line: Option<u64>,
    response: Option<Response>,
    /// Anthropic's result format (`--output-format anthropic`).
    result: Option<AnthropicResult>,
    error: Option<ErrorPart>,
}

#[derive(Deserialize)]
struct AnthropicResult {
    message: Option<Box<serde_json::value::RawValue>>,
}

#[derive(Deserialize)]
struct Response {
    body: Option<Box<serde_json::value::RawValue>>,
}

#[derive(Deserialize)]
struct ErrorPart {
    code: Option<String>,
    message: Option<String>,
}

impl Row {
    /// The row of one record line; `None` when it is not a record.
    pub fn from_record(bytes: &[u8], prices: &PriceTable) -> Option<Row> {
        let record: Record = serde_json::from_slice(bytes).ok()?;
        let mut row = Row {
            line: record.line,
            custom_id: record.custom_id,
            ..Row::default()
        };
        if let Some(e) = record.error {
            row.failed = true;
            row.error_code = e.code;
            row.error_message = e.message;
        }
        let body = record
            .response
            .and_then(|r| r.body)
            .or_else(|| record.result.and_then(|r| r.message));
        let Some(body) = body else {
            return Some(row);
        };
        if let Some(reported) = sluice::parse_usage(body.get().as_bytes()) {
            row.model = reported.model.map(|m| m.into_owned());
            if body.get().contains("\"usage\"") {
                let u = reported.usage;
                row.prompt_tokens = Some(u.prompt_tokens);
                row.cached_tokens = Some(u.cached_tokens);
                row.completion_tokens = Some(u.completion_tokens);
                row.cost_usd = row
                    .model
                    .as_deref()
                    .and_then(|m| prices.lookup(m))
                    .map(|p| p.cost(u));
            }
        }
        if let Ok(body) = serde_json::from_str::<Value>(body.get()) {
            answer(&body, &mut row);
        }
        Some(row)
    }
}

/// Fills the text (or embedding) and finish reason, read as the library reads answers.
fn answer(body: &Value, row: &mut Row) {
    let a = sluice::answer::Answer::of(body);
    row.text = a.text;
    row.embedding = a.embedding.map(|e| e.to_string());
    row.finish_reason = a.finish_reason;
}

/// The prompt of an input line: a Batch line's last user message (chat), `prompt`
/// (completions) or `input` (embeddings, responses); a plain prompt line as it is.
pub fn prompt_of(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    let Ok(Value::Object(request)) = serde_json::from_slice::<Value>(line) else {
        return text.trim_end_matches(['\r', '\n']).to_owned();
    };
    let body = &request.get("body").cloned().unwrap_or(Value::Null);
    if let Some(messages) = body["messages"].as_array() {
        let last_user = messages.iter().rev().find(|m| m["role"] == "user");
        return last_user.map_or_else(String::new, |m| content_text(&m["content"]));
    }
    for field in ["prompt", "input"] {
        match &body[field] {
            Value::String(s) => return s.clone(),
            Value::Null => {}
            other => return other.to_string(),
        }
    }
    String::new()
}

fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join(""),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_chat_responses_embeddings_and_failures() {
        let prices = PriceTable::builtin();
        let chat = br#"{"id":"b","custom_id":"a","line":3,"response":{"status_code":200,"body":{"model":"gpt-4o-mini","choices":[{"message":{"role":"assistant","content":"Hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1000000,"completion_tokens":0}}},"error":null}"#;
        let row = Row::from_record(chat, &prices).unwrap();
        assert_eq!(row.line, Some(3));
        assert_eq!(row.text.as_deref(), Some("Hi"));
        assert_eq!(row.finish_reason.as_deref(), Some("stop"));
        assert!((row.cost_usd.unwrap() - 0.15).abs() < 1e-9);
        let responses = br#"{"custom_id":"r","line":1,"response":{"body":{"model":"x","status":"completed","output":[{"type":"reasoning"},{"type":"message","content":[{"type":"output_text","text":"A"},{"type":"output_text","text":"B"}]}]}}}"#;
        let row = Row::from_record(responses, &prices).unwrap();
        assert_eq!(row.text.as_deref(), Some("AB"));
        assert_eq!(row.finish_reason.as_deref(), Some("completed"));
        assert_eq!(row.cost_usd, None);
        let emb = br#"{"custom_id":"e","line":2,"response":{"body":{"data":[{"embedding":[0.5,-1.0]}]}}}"#;
        assert_eq!(
            Row::from_record(emb, &prices).unwrap().embedding.as_deref(),
            Some("[0.5,-1.0]")
        );
        let failed = br#"{"custom_id":"f","line":4,"response":null,"error":{"code":"timeout","message":"took too long"}}"#;
        let row = Row::from_record(failed, &prices).unwrap();
        assert!(row.failed);
        assert_eq!(row.error_code.as_deref(), Some("timeout"));
        assert!(Row::from_record(b"not json", &prices).is_none());
    }

    #[test]
    fn prompts_of_batch_lines_and_plain_lines() {
        let chat = br#"{"custom_id":"a","body":{"messages":[{"role":"system","content":"s"},{"role":"user","content":[{"type":"text","text":"q1"}]}]}}"#;
        assert_eq!(prompt_of(chat), "q1");
        assert_eq!(
            prompt_of(br#"{"custom_id":"e","body":{"input":"text"}}"#),
            "text"
        );
        assert_eq!(prompt_of(b"just a prompt\r"), "just a prompt");
    }
}
