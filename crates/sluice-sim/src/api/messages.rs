//! `POST /v1/messages`, Anthropic's Messages API (non-streamed): `x-api-key` and
//! `anthropic-version` required, `max_tokens` required, a `system` prompt beside the
//! messages, text blocks in the answer and Anthropic's usage fields.

use serde_json::{Value, json};

use super::dialect::Dialect;
use super::endpoint::{Answer, ApiEndpoint};
use super::errors::ApiError;
use super::pipeline::{Admitted, Cost, optional_u64};
use crate::content::{prompt_fingerprint, reply_text};
use crate::tokens::{bpe_for_model, count_chat, count_content};

/// `POST /v1/messages`.
pub(crate) struct Messages;

impl ApiEndpoint for Messages {
    const DIALECT: Dialect = Dialect::Anthropic;
    type Parsed = ();

    fn read(body: &Value, model: &str) -> Result<(Cost, ()), ApiError> {
        let messages = match body.get("messages") {
            Some(Value::Array(m)) if !m.is_empty() => m,
            Some(Value::Array(_)) => {
                return Err(ApiError::invalid(
                    "messages: at least one message is required",
                ));
            }
            Some(_) => return Err(ApiError::invalid("messages: Input should be a valid list")),
            None => return Err(ApiError::invalid("messages: Field required")),
        };
        if let Some((i, _)) = messages.iter().enumerate().find(|(_, m)| {
            !matches!(
                m.get("role").and_then(Value::as_str),
                Some("user" | "assistant")
            )
        }) {
            return Err(ApiError::invalid(format!(
                "messages.{i}.role: Input should be 'user' or 'assistant'"
            )));
        }
        let Some(max_tokens) = optional_u64(body, "max_tokens")? else {
            return Err(ApiError::invalid("max_tokens: Field required"));
        };
        if body.get("stream").and_then(Value::as_bool) == Some(true) {
            return Err(ApiError::invalid(
                "stream: the simulator answers Messages requests whole; leave stream unset",
            ));
        }
        let bpe = bpe_for_model(model);
        let system = body.get("system").map_or(0, |s| 3 + count_content(bpe, s));
        let cost = Cost {
            prompt_tokens: (count_chat(bpe, messages, None) + system) as u64,
            max_tokens: Some(max_tokens),
            n: 1,
            fingerprint: prompt_fingerprint(&body["messages"]),
            generates: true,
        };
        Ok((cost, ()))
    }

    fn answer(a: &Admitted<'_>, (): ()) -> Answer {
        let text = reply_text(a.client_id.as_deref(), a.cost.fingerprint, a.output_tokens);
        let output = u64::from(a.output_tokens);
        a.state.recorder.completion(output);
        let stop = match a.cost.max_tokens {
            Some(max) if output >= max => "max_tokens",
            _ => "end_turn",
        };
        let body = json!({
            "id": format!("msg_sim{:012x}", a.seq),
            "type": "message",
            "role": "assistant",
            "model": a.model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": stop,
            "stop_sequence": null,
            "usage": {
                "input_tokens": a.cost.prompt_tokens,
                "output_tokens": output,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
            },
        });
        Answer::Json(body)
    }
}
