//! `POST /v1/chat/completions`, plain and streamed (server-sent events).

use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};

use super::dialect::Dialect;
use super::endpoint::{Answer, ApiEndpoint};
use super::errors::ApiError;
use super::pipeline::{Admitted, Cost, optional_u64};
use crate::content::{prompt_fingerprint, reply_pieces, reply_text};
use crate::tokens::{bpe_for_model, count_chat};

/// `POST /v1/chat/completions`.
pub(crate) struct Chat;

impl ApiEndpoint for Chat {
    const DIALECT: Dialect = Dialect::OpenAi;
    /// Whether to stream.
    type Parsed = bool;

    fn read(body: &Value, model: &str) -> Result<(Cost, bool), ApiError> {
        read(body, model)
    }

    fn answer(a: &Admitted<'_>, stream: bool) -> Answer {
        if stream {
            Answer::Ready(stream_reply(a))
        } else {
            Answer::Json(completion(a))
        }
    }
}

fn read(body: &Value, model: &str) -> Result<(Cost, bool), ApiError> {
    let messages = match body.get("messages") {
        Some(Value::Array(m)) if !m.is_empty() => m,
        Some(Value::Array(_)) => {
            return Err(ApiError::invalid("'messages' must not be empty.")
                .param("messages")
                .code("empty_array"));
        }
        Some(_) => return Err(ApiError::invalid("'messages' must be an array.").param("messages")),
        None => return Err(ApiError::missing("messages")),
    };
    if let Some((i, _)) = messages
        .iter()
        .enumerate()
        .find(|(_, m)| m.get("role").and_then(Value::as_str).is_none())
    {
        return Err(ApiError::invalid(format!(
            "Invalid value for 'messages[{i}]': each message needs a string 'role'."
        ))
        .param("messages"));
    }
    let max_tokens = match optional_u64(body, "max_completion_tokens")? {
        Some(m) => Some(m),
        None => optional_u64(body, "max_tokens")?,
    };
    let n = optional_u64(body, "n")?.unwrap_or(1);
    if n == 0 || n > 128 {
        return Err(ApiError::invalid("'n' must be between 1 and 128.").param("n"));
    }
    let bpe = bpe_for_model(model);
    let prompt_tokens = count_chat(bpe, messages, body.get("tools")) as u64;
    let cost = Cost {
        prompt_tokens,
        max_tokens,
        n,
        fingerprint: prompt_fingerprint(&body["messages"]),
        generates: true,
    };
    Ok((
        cost,
        body.get("stream").and_then(Value::as_bool).unwrap_or(false),
    ))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn finish_reason(a: &Admitted<'_>) -> &'static str {
    match a.cost.max_tokens {
        Some(max) if u64::from(a.output_tokens) >= max => "length",
        _ => "stop",
    }
}

fn usage(a: &Admitted<'_>) -> Value {
    let completion = u64::from(a.output_tokens) * a.cost.n;
    a.state.recorder.completion(completion);
    json!({
        "prompt_tokens": a.cost.prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": a.cost.prompt_tokens + completion,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    })
}

fn completion(a: &Admitted<'_>) -> Value {
    let text = reply_text(a.client_id.as_deref(), a.cost.fingerprint, a.output_tokens);
    let reason = finish_reason(a);
    let choices: Vec<Value> = (0..a.cost.n)
        .map(|i| {
            json!({
                "index": i,
                "message": {"role": "assistant", "content": text, "refusal": null},
                "logprobs": null,
                "finish_reason": reason,
            })
        })
        .collect();
    json!({
        "id": format!("chatcmpl-sim{:012x}", a.seq),
        "object": "chat.completion",
        "created": unix_now(),
        "model": a.model,
        "choices": choices,
        "usage": usage(a),
        "system_fingerprint": "fp_sluice_sim",
    })
}

/// Server-sent events: a role chunk, one chunk per piece of text (the first after the
/// time to first token, the rest a token's time apart), a finish chunk, a usage chunk with
/// no choices, and `[DONE]`.
fn stream_reply(a: &Admitted<'_>) -> Response {
    let id = format!("chatcmpl-sim{:012x}", a.seq);
    let created = unix_now();
    let chunk = |delta: Value, finish: Value| -> Bytes {
        let v = json!({
            "id": id, "object": "chat.completion.chunk", "created": created, "model": a.model,
            "system_fingerprint": "fp_sluice_sim",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        });
        Bytes::from(format!("data: {v}\n\n"))
    };
    let mut events = vec![(
        chunk(json!({"role": "assistant", "content": ""}), Value::Null),
        a.ttft(),
    )];
    let pieces = reply_pieces(a.client_id.as_deref(), a.cost.fingerprint, a.output_tokens);
    for (i, piece) in pieces.into_iter().enumerate() {
        let wait = if i == 0 {
            Default::default()
        } else {
            a.per_token()
        };
        events.push((chunk(json!({"content": piece}), Value::Null), wait));
    }
    events.push((
        chunk(json!({}), json!(finish_reason(a))),
        Default::default(),
    ));
    let usage_event = json!({
        "id": id, "object": "chat.completion.chunk", "created": created, "model": a.model,
        "choices": [], "usage": usage(a),
    });
    events.push((
        Bytes::from(format!("data: {usage_event}\n\n")),
        Default::default(),
    ));
    events.push((Bytes::from_static(b"data: [DONE]\n\n"), Default::default()));
    let stream = futures::stream::unfold(events.into_iter(), |mut rest| async move {
        let (bytes, wait) = rest.next()?;
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        Some((Ok::<_, std::io::Error>(bytes), rest))
    });
    let mut response = Body::from_stream(stream).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    a.reply(response)
}
