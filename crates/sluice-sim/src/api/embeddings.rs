//! `POST /v1/embeddings`: deterministic unit vectors derived from each input.

use base64::Engine as _;
use serde_json::{Value, json};

use super::dialect::Dialect;
use super::endpoint::{Answer, ApiEndpoint};
use super::errors::ApiError;
use super::pipeline::{Admitted, Cost, optional_u64};
use crate::content::{embedding, prompt_fingerprint};
use crate::tokens::{bpe_for_model, count_input};

/// OpenAI's default for `text-embedding-3-small` and `ada-002`.
const DEFAULT_DIMENSIONS: u64 = 1536;

/// `POST /v1/embeddings`.
pub(crate) struct Embeddings;

impl ApiEndpoint for Embeddings {
    const DIALECT: Dialect = Dialect::OpenAi;
    type Parsed = Inputs;

    fn read(body: &Value, model: &str) -> Result<(Cost, Inputs), ApiError> {
        read(body, model)
    }

    fn answer(a: &Admitted<'_>, parsed: Inputs) -> Answer {
        let Inputs {
            inputs,
            dimensions,
            base64,
        } = parsed;
        let data: Vec<Value> = inputs
            .iter()
            .enumerate()
            .map(|(i, input)| {
                let v = embedding(prompt_fingerprint(input), dimensions);
                let encoded = if base64 {
                    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                    json!(base64::engine::general_purpose::STANDARD.encode(bytes))
                } else {
                    json!(v)
                };
                json!({"object": "embedding", "index": i, "embedding": encoded})
            })
            .collect();
        let body = json!({
            "object": "list",
            "data": data,
            "model": a.model,
            "usage": {"prompt_tokens": a.cost.prompt_tokens, "total_tokens": a.cost.prompt_tokens},
        });
        Answer::Json(body)
    }
}

/// The inputs and how to answer them.
pub(crate) struct Inputs {
    /// Each input on its own (a string, or an array of token ids).
    inputs: Vec<Value>,
    dimensions: usize,
    base64: bool,
}

fn read(body: &Value, model: &str) -> Result<(Cost, Inputs), ApiError> {
    let input = body
        .get("input")
        .ok_or_else(|| ApiError::missing("input"))?;
    let inputs: Vec<Value> = match input {
        Value::String(_) => vec![input.clone()],
        // An array of integers is one tokenized input; an array of strings or of arrays is many.
        Value::Array(items) if items.iter().all(Value::is_number) && !items.is_empty() => {
            vec![input.clone()]
        }
        Value::Array(items) if !items.is_empty() => items.clone(),
        _ => {
            return Err(ApiError::invalid(
                "'input' must be a non-empty string or array of strings or token arrays.",
            )
            .param("input"));
        }
    };
    let dimensions = optional_u64(body, "dimensions")?.unwrap_or(DEFAULT_DIMENSIONS);
    if dimensions == 0 || dimensions > 16_384 {
        return Err(
            ApiError::invalid("'dimensions' must be between 1 and 16384.").param("dimensions"),
        );
    }
    let base64 = match body.get("encoding_format").and_then(Value::as_str) {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "'encoding_format' must be 'float' or 'base64', not '{other}'."
            ))
            .param("encoding_format"));
        }
    };
    let cost = Cost {
        prompt_tokens: count_input(bpe_for_model(model), input) as u64,
        max_tokens: None,
        n: 1,
        fingerprint: prompt_fingerprint(input),
        generates: false,
    };
    Ok((
        cost,
        Inputs {
            inputs,
            dimensions: dimensions as usize,
            base64,
        },
    ))
}
