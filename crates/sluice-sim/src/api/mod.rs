//! The HTTP API: OpenAI's endpoints and the simulator's own `/sim/stats`.

mod chat;
mod completions;
mod embeddings;
mod errors;
mod meta;
mod pipeline;
mod responses;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

pub use pipeline::CLIENT_REQUEST_ID;

use crate::state::SimState;

/// The router, with every endpoint under `/v1` and the statistics under `/sim`.
pub(crate) fn router(state: Arc<SimState>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat::handle))
        .route("/v1/completions", post(completions::handle))
        .route("/v1/embeddings", post(embeddings::handle))
        .route("/v1/responses", post(responses::handle))
        .route("/v1/models", get(meta::models))
        .route("/sim/stats", get(meta::stats))
        .with_state(state)
}
