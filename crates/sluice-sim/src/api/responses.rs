//! `POST /v1/responses`, the Responses API (non-streamed).

use axum::Extension;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Value, json};

use super::errors::ApiError;
use super::pipeline::{Cost, Shared, admit, intake, optional_u64, reply_error};
use crate::content::{prompt_fingerprint, reply_text};
use crate::server::ConnControl;
use crate::tokens::{bpe_for_model, count_responses};

pub(crate) async fn handle(
    State(state): State<Shared>,
    Extension(conn): Extension<ConnControl>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let intake = match intake(&state, &headers, body).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    let seq = intake.seq;
    let cost = match read(&intake.body, &intake.model) {
        Ok(c) => c,
        Err(e) => return reply_error(&state, e, seq),
    };
    let a = match admit(&state, intake, cost).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    if let Some(r) = a.early_fault(&conn).await {
        return r;
    }
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
    a.deliver_json(&body).await
}

fn read(body: &Value, model: &str) -> Result<Cost, ApiError> {
    let input = match body.get("input") {
        Some(i @ (Value::String(_) | Value::Array(_))) => i,
        Some(_) => {
            return Err(ApiError::invalid("'input' must be a string or an array.").param("input"));
        }
        None => return Err(ApiError::missing("input")),
    };
    let instructions = body.get("instructions").and_then(Value::as_str);
    Ok(Cost {
        prompt_tokens: count_responses(bpe_for_model(model), instructions, input) as u64,
        max_tokens: optional_u64(body, "max_output_tokens")?,
        n: 1,
        fingerprint: prompt_fingerprint(input),
        generates: true,
    })
}
