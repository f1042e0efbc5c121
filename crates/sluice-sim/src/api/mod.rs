//! The HTTP API: OpenAI's endpoints (also under an Azure deployment path), Anthropic's
//! Messages API, and the simulator's own `/sim/stats`.

mod azure;
mod chat;
mod completions;
mod dialect;
mod embeddings;
mod endpoint;
mod errors;
mod messages;
mod meta;
mod pipeline;
mod responses;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

pub use pipeline::CLIENT_REQUEST_ID;

use crate::state::SimState;
use chat::Chat;
use completions::Completions;
use embeddings::Embeddings;
use endpoint::handle;
use messages::Messages;
use responses::Responses;

/// The router: every endpoint under `/v1`, OpenAI's four again under an Azure deployment
/// path (`/openai/deployments/{name}/...?api-version=...`), and the statistics under
/// `/sim`.
pub(crate) fn router(state: Arc<SimState>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(handle::<Chat>))
        .route("/v1/completions", post(handle::<Completions>))
        .route("/v1/embeddings", post(handle::<Embeddings>))
        .route("/v1/responses", post(handle::<Responses>))
        .route("/v1/messages", post(handle::<Messages>))
        .nest("/openai/deployments/{deployment}", azure::routes())
        .route("/v1/models", get(meta::models))
        .route("/sim/stats", get(meta::stats))
        .route("/sim/limits", post(meta::set_limits))
        .with_state(state)
}
