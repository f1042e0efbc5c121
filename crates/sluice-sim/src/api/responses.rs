//! `POST /v1/responses`, the Responses API (non-streamed).

use serde_json::{Value, json};

use super::dialect::Dialect;
use super::endpoint::{Answer, ApiEndpoint};
use super::errors::ApiError;
use super::pipeline::{Admitted, Cost, optional_u64};
use crate::content::{prompt_fingerprint, reply_text};
use crate::tokens::{bpe_for_model, count_responses};

/// `POST /v1/responses`.
pub(crate) struct Responses;

impl ApiEndpoint for Responses {
    const DIALECT: Dialect = Dialect::OpenAi;
    type Parsed = ();

    fn read(body: &Value, model: &str) -> Result<(Cost, ()), ApiError> {
        read(body, model)
    }

    fn answer(a: &Admitted<'_>, (): ()) -> Answer {
        let text = reply_text(a.client_id.as_deref(), a.cost.fingerprint, a.output_tokens);
        let output = u64::from(a.output_tokens);
        a.state.recorder.completion(output);
        let incomplete = matches!(a.cost.max_tokens, Some(max) if output >= max);
        let body = json!({
            "id": format!("resp_sim{:012x}", a.seq),
            "object": "response",
            "created_at": std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            "status": if incomplete { "incomplete" } else { "completed" },
            "incomplete_details": if incomplete { json!({"reason": "max_output_tokens"}) } else { Value::Null },
            "model": a.model,
            "output": [{
                "type": "message",
                "id": format!("msg_sim{:012x}", a.seq),
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            }],
            "usage": {
                "input_tokens": a.cost.prompt_tokens,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": output,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": a.cost.prompt_tokens + output,
            },
        });
        Answer::Json(body)
    }
}

fn read(body: &Value, model: &str) -> Result<(Cost, ()), ApiError> {
    let input = match body.get("input") {
        Some(i @ (Value::String(_) | Value::Array(_))) => i,
        Some(_) => {
            return Err(ApiError::invalid("'input' must be a string or an array.").param("input"));
        }
        None => return Err(ApiError::missing("input")),
    };
    let instructions = body.get("instructions").and_then(Value::as_str);
    let cost = Cost {
        prompt_tokens: count_responses(bpe_for_model(model), instructions, input) as u64,
        max_tokens: optional_u64(body, "max_output_tokens")?,
        n: 1,
        fingerprint: prompt_fingerprint(input),
        generates: true,
    };
    Ok((cost, ()))
}
