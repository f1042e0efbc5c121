//! `POST /v1/completions`, the legacy text completion endpoint.

use serde_json::{Value, json};

use super::dialect::Dialect;
use super::endpoint::{Answer, ApiEndpoint};
use super::errors::ApiError;
use super::pipeline::{Admitted, Cost, optional_u64};
use crate::content::{prompt_fingerprint, reply_text};
use crate::tokens::{bpe_for_model, count_input};

/// `POST /v1/completions`.
pub(crate) struct Completions;

impl ApiEndpoint for Completions {
    const DIALECT: Dialect = Dialect::OpenAi;
    type Parsed = ();

    fn read(body: &Value, model: &str) -> Result<(Cost, ()), ApiError> {
        read(body, model)
    }

    fn answer(a: &Admitted<'_>, (): ()) -> Answer {
        let text = reply_text(a.client_id.as_deref(), a.cost.fingerprint, a.output_tokens);
        let reason = match a.cost.max_tokens {
            Some(max) if u64::from(a.output_tokens) >= max => "length",
            _ => "stop",
        };
        let choices: Vec<Value> = (0..a.cost.n)
            .map(|i| json!({"text": text, "index": i, "logprobs": null, "finish_reason": reason}))
            .collect();
        let completion = u64::from(a.output_tokens) * a.cost.n;
        a.state.recorder.completion(completion);
        let body = json!({
            "id": format!("cmpl-sim{:012x}", a.seq),
            "object": "text_completion",
            "created": std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            "model": a.model,
            "choices": choices,
            "usage": {
                "prompt_tokens": a.cost.prompt_tokens,
                "completion_tokens": completion,
                "total_tokens": a.cost.prompt_tokens + completion,
            },
        });
        Answer::Json(body)
    }
}

fn read(body: &Value, model: &str) -> Result<(Cost, ()), ApiError> {
    let prompt = match body.get("prompt") {
        Some(p @ (Value::String(_) | Value::Array(_))) => p,
        Some(_) => {
            return Err(ApiError::invalid("'prompt' must be a string or an array.").param("prompt"));
        }
        None => return Err(ApiError::missing("prompt")),
    };
    let n = optional_u64(body, "n")?.unwrap_or(1).max(1);
    let cost = Cost {
        prompt_tokens: count_input(bpe_for_model(model), prompt) as u64,
        // The legacy endpoint defaults to 16 output tokens.
        max_tokens: Some(optional_u64(body, "max_tokens")?.unwrap_or(16)),
        n,
        fingerprint: prompt_fingerprint(prompt),
        generates: true,
    };
    Ok((cost, ()))
}
