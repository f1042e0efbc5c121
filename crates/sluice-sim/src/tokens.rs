//! Prompt token counting as an OpenAI server does it, with tiktoken's real encodings.
//!
//! Chat messages are counted with the framing OpenAI documents (three tokens a message,
//! one for a `name`, three to prime the reply) and tool definitions are rendered into the
//! TypeScript-like namespace the models actually read, then counted. This is deliberately
//! written apart from the engine's estimator: the engine's test that its estimate is
//! within 5% of this count is only worth something if the two are not the same code.

use serde_json::Value;
use tiktoken_rs::CoreBPE;
use tiktoken_rs::tokenizer::{Tokenizer, get_tokenizer};

/// Tokens an image part costs at low detail, which is what the simulator charges for any image.
const IMAGE_TOKENS: usize = 85;

/// The encoding a model uses: o200k for the gpt-4o, o-series, gpt-4.1 and gpt-5 families,
/// cl100k for everything else (older OpenAI models and any other name).
pub fn bpe_for_model(model: &str) -> &'static CoreBPE {
    match get_tokenizer(model) {
        Some(Tokenizer::O200kBase | Tokenizer::O200kHarmony) => tiktoken_rs::o200k_base_singleton(),
        _ => tiktoken_rs::cl100k_base_singleton(),
    }
}

/// Builds both encodings now rather than on first use.
pub fn warm_up() {
    let _ = tiktoken_rs::o200k_base_singleton();
    let _ = tiktoken_rs::cl100k_base_singleton();
}

/// Tokens in a plain string.
pub fn count_text(bpe: &CoreBPE, text: &str) -> usize {
    if text.is_empty() {
        0
    } else {
        bpe.encode_ordinary(text).len()
    }
}

/// Tokens of a message `content`: a string, or an array of parts (text and images).
pub fn count_content(bpe: &CoreBPE, content: &Value) -> usize {
    match content {
        Value::String(s) => count_text(bpe, s),
        Value::Array(parts) => parts
            .iter()
            .map(|part| match part.get("type").and_then(Value::as_str) {
                Some("image_url" | "input_image") => IMAGE_TOKENS,
                _ => part
                    .get("text")
                    .and_then(Value::as_str)
                    .map_or(0, |t| count_text(bpe, t)),
            })
            .sum(),
        _ => 0,
    }
}

/// Prompt tokens of a chat request's `messages` and `tools`.
pub fn count_chat(bpe: &CoreBPE, messages: &[Value], tools: Option<&Value>) -> usize {
    let mut total = 3; // every reply is primed with <|start|>assistant<|message|>
    for message in messages {
        total += 3;
        if let Some(role) = message.get("role").and_then(Value::as_str) {
            total += count_text(bpe, role);
        }
        if let Some(content) = message.get("content") {
            total += count_content(bpe, content);
        }
        if let Some(name) = message.get("name").and_then(Value::as_str) {
            total += 1 + count_text(bpe, name);
        }
        if let Some(calls) = message.get("tool_calls").and_then(Value::as_array) {
            for call in calls {
                if let Some(f) = call.get("function") {
                    total += 3;
                    total += f
                        .get("name")
                        .and_then(Value::as_str)
                        .map_or(0, |n| count_text(bpe, n));
                    total += f
                        .get("arguments")
                        .and_then(Value::as_str)
                        .map_or(0, |a| count_text(bpe, a));
                }
            }
        }
    }
    if let Some(Value::Array(tools)) = tools
        && !tools.is_empty()
    {
        total += count_text(bpe, &render_tools(tools));
    }
    total
}

/// Renders function tools the way they reach the model: a TypeScript namespace.
fn render_tools(tools: &[Value]) -> String {
    let mut out = String::from("# Tools\n\n## functions\n\nnamespace functions {\n\n");
    for tool in tools {
        let f = tool.get("function").unwrap_or(tool);
        if let Some(desc) = f.get("description").and_then(Value::as_str) {
            out.push_str("// ");
            out.push_str(desc);
            out.push('\n');
        }
        out.push_str("type ");
        out.push_str(f.get("name").and_then(Value::as_str).unwrap_or("tool"));
        out.push_str(" = (");
        if let Some(props) = f
            .get("parameters")
            .and_then(|p| p.get("properties"))
            .and_then(Value::as_object)
        {
            out.push_str("_: {\n");
            for (name, schema) in props {
                if let Some(desc) = schema.get("description").and_then(Value::as_str) {
                    out.push_str("// ");
                    out.push_str(desc);
                    out.push('\n');
                }
                out.push_str(name);
                out.push_str(": ");
                match schema.get("enum").and_then(Value::as_array) {
                    Some(values) => {
                        let alts: Vec<String> = values.iter().map(Value::to_string).collect();
                        out.push_str(&alts.join(" | "));
                    }
                    None => out.push_str(match schema.get("type").and_then(Value::as_str) {
                        Some("integer" | "number") => "number",
                        Some("boolean") => "boolean",
                        Some("array") => "any[]",
                        Some("object") => "object",
                        _ => "string",
                    }),
                }
                out.push_str(",\n");
            }
            out.push('}');
        }
        out.push_str(") => any;\n\n");
    }
    out.push_str("} // namespace functions");
    out
}

/// Tokens of a `prompt` (completions) or `input` (embeddings): a string, an array of
/// strings, an array of token ids, or an array of arrays of token ids.
pub fn count_input(bpe: &CoreBPE, input: &Value) -> usize {
    match input {
        Value::String(s) => count_text(bpe, s),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => count_text(bpe, s),
                Value::Number(_) => 1,
                Value::Array(ids) => ids.len(),
                _ => 0,
            })
            .sum(),
        _ => 0,
    }
}

/// Tokens of a Responses API request: `instructions` plus `input` (a string or messages).
pub fn count_responses(bpe: &CoreBPE, instructions: Option<&str>, input: &Value) -> usize {
    let from_instructions = instructions.map_or(0, |i| 3 + count_text(bpe, i));
    let from_input = match input {
        Value::Array(items) => count_chat(bpe, items, None),
        other => 3 + 3 + count_content(bpe, other),
    };
    from_instructions + from_input
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn picks_encoding_by_model_family() {
        let o200k = tiktoken_rs::o200k_base_singleton() as *const CoreBPE;
        let cl100k = tiktoken_rs::cl100k_base_singleton() as *const CoreBPE;
        for model in ["gpt-4o", "gpt-4o-mini", "o1", "o3-mini", "gpt-4.1", "gpt-5"] {
            assert_eq!(bpe_for_model(model) as *const _, o200k, "{model}");
        }
        for model in ["gpt-4", "gpt-3.5-turbo", "llama-3-8b", "whatever"] {
            assert_eq!(bpe_for_model(model) as *const _, cl100k, "{model}");
        }
    }

    #[test]
    fn counts_text_with_the_real_tokenizer() {
        // Known counts from OpenAI's tokenizer.
        let o200k = bpe_for_model("gpt-4o");
        assert_eq!(count_text(o200k, "hello world"), 2);
        assert_eq!(count_text(o200k, ""), 0);
        let cl100k = bpe_for_model("gpt-4");
        assert_eq!(count_text(cl100k, "tiktoken is great!"), 6);
    }

    #[test]
    fn counts_chat_like_the_cookbook() {
        // The OpenAI cookbook's example: 129 prompt tokens for gpt-4o... here a smaller
        // exact case: two messages of known size.
        let bpe = bpe_for_model("gpt-4o");
        let messages = vec![
            json!({"role": "system", "content": "hello world"}),
            json!({"role": "user", "content": "hello world", "name": "bob"}),
        ];
        let role_system = count_text(bpe, "system");
        let role_user = count_text(bpe, "user");
        let name = count_text(bpe, "bob");
        let expected = 3 + (3 + role_system + 2) + (3 + role_user + 2 + 1 + name);
        assert_eq!(count_chat(bpe, &messages, None), expected);
    }

    #[test]
    fn counts_content_parts_and_tools() {
        let bpe = bpe_for_model("gpt-4o");
        let text_only = vec![json!({"role": "user", "content": "describe this"})];
        let parts = vec![json!({"role": "user", "content": [
            {"type": "text", "text": "describe this"},
            {"type": "image_url", "image_url": {"url": "data:..."}}
        ]})];
        assert_eq!(
            count_chat(bpe, &parts, None),
            count_chat(bpe, &text_only, None) + IMAGE_TOKENS
        );
        let tools = json!([{"type": "function", "function": {
            "name": "get_weather", "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {
                "city": {"type": "string", "description": "City name"},
                "unit": {"type": "string", "enum": ["c", "f"]}
            }}
        }}]);
        let with_tools = count_chat(bpe, &text_only, Some(&tools));
        assert!(with_tools > count_chat(bpe, &text_only, None) + 10);
    }

    #[test]
    fn counts_inputs_of_every_shape() {
        let bpe = bpe_for_model("text-embedding-3-small");
        assert_eq!(count_input(bpe, &json!("hello world")), 2);
        assert_eq!(count_input(bpe, &json!(["hello world", "hello"])), 3);
        assert_eq!(count_input(bpe, &json!([1, 2, 3])), 3);
        assert_eq!(count_input(bpe, &json!([[1, 2], [3]])), 3);
    }
}
