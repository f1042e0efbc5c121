//! What a response says, read from the body of any endpoint: the text (chat
//! `message.content`, or its tool calls; completions `text`; responses' `output_text`
//! parts; Anthropic's `text` blocks, or its tool uses), the embedding, and why generation
//! stopped. With several choices (`n` > 1), the
//! first. Used by [`crate::Success::text`] and by the CLI's export, so both read answers
//! the same way.

use serde_json::Value;

/// The parts of an answer a caller usually wants.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct Answer {
    /// The text, when the endpoint answers with text (tool calls as their JSON).
    pub text: Option<String>,
    /// The first embedding, as its JSON array.
    pub embedding: Option<Value>,
    /// Why generation stopped (`stop`, `length`, `tool_calls`; for responses, the
    /// incomplete reason or the status).
    pub finish_reason: Option<String>,
}

impl Answer {
    /// Reads `body`.
    pub fn of(body: &Value) -> Answer {
        let mut a = Answer::default();
        if let Some(choice) = body["choices"].get(0) {
            a.finish_reason = choice["finish_reason"].as_str().map(str::to_owned);
            let message = &choice["message"];
            a.text = match &message["content"] {
                Value::String(s) => Some(s.clone()),
                _ if message["tool_calls"].is_array() => Some(message["tool_calls"].to_string()),
                _ => message["refusal"]
                    .as_str()
                    .or_else(|| choice["text"].as_str())
                    .map(str::to_owned),
            };
        } else if let Some(embedding) = body["data"].get(0).map(|d| &d["embedding"]) {
            a.embedding = Some(embedding.clone());
        } else if let Some(output) = body["output"].as_array() {
            let text: String = output
                .iter()
                .filter(|item| item["type"] == "message")
                .flat_map(|item| item["content"].as_array().into_iter().flatten())
                .filter(|part| part["type"] == "output_text")
                .filter_map(|part| part["text"].as_str())
                .collect();
            a.text = Some(text);
            a.finish_reason = body["incomplete_details"]["reason"]
                .as_str()
                .or_else(|| body["status"].as_str())
                .map(str::to_owned);
        } else if let Some(blocks) = body["content"].as_array() {
            // Anthropic's Messages API.
            let text: String = blocks
                .iter()
                .filter(|b| b["type"] == "text")
                .filter_map(|b| b["text"].as_str())
                .collect();
            let tools: Vec<&Value> = blocks.iter().filter(|b| b["type"] == "tool_use").collect();
            a.text = Some(if text.is_empty() && !tools.is_empty() {
                Value::from(tools.into_iter().cloned().collect::<Vec<_>>()).to_string()
            } else {
                text
            });
            a.finish_reason = body["stop_reason"].as_str().map(str::to_owned);
        }
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_anthropic_text_blocks_tool_uses_and_stop_reason() {
        let message = json!({"type": "message", "content": [{"type": "text", "text": "Hel"},
            {"type": "text", "text": "lo"}], "stop_reason": "max_tokens"});
        let a = Answer::of(&message);
        assert_eq!(
            (a.text.as_deref(), a.finish_reason.as_deref()),
            (Some("Hello"), Some("max_tokens"))
        );
        let tool = json!({"content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}],
            "stop_reason": "tool_use"});
        assert!(Answer::of(&tool).text.unwrap().contains("\"tool_use\""));
    }

    #[test]
    fn reads_chat_tool_calls_completions_responses_and_embeddings() {
        let chat = json!({"choices": [{"message": {"content": "Hi"}, "finish_reason": "stop"}]});
        let a = Answer::of(&chat);
        assert_eq!(
            (a.text.as_deref(), a.finish_reason.as_deref()),
            (Some("Hi"), Some("stop"))
        );
        let tools =
            json!({"choices": [{"message": {"content": null, "tool_calls": [{"id": "t"}]}}]});
        assert_eq!(Answer::of(&tools).text.as_deref(), Some(r#"[{"id":"t"}]"#));
        let completion = json!({"choices": [{"text": "abc", "finish_reason": "length"}]});
        assert_eq!(Answer::of(&completion).text.as_deref(), Some("abc"));
        let responses = json!({"status": "completed", "output": [{"type": "reasoning"},
            {"type": "message", "content": [{"type": "output_text", "text": "A"}, {"type": "output_text", "text": "B"}]}]});
        let a = Answer::of(&responses);
        assert_eq!(
            (a.text.as_deref(), a.finish_reason.as_deref()),
            (Some("AB"), Some("completed"))
        );
        let emb = json!({"data": [{"embedding": [0.5, -1.0]}]});
        assert_eq!(Answer::of(&emb).embedding, Some(json!([0.5, -1.0])));
        assert_eq!(Answer::of(&json!({})), Answer::default());
    }
}
