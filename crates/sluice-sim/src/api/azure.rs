//! OpenAI's four endpoints under an Azure OpenAI deployment path,
//! `/openai/deployments/{deployment}/chat/completions?api-version=...`. As Azure does, a
//! request without `api-version` is not found.

use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;

use super::chat::Chat;
use super::completions::Completions;
use super::embeddings::Embeddings;
use super::endpoint::handle;
use super::pipeline::Shared;
use super::responses::Responses;

/// The deployment's routes.
pub(crate) fn routes() -> Router<Shared> {
    Router::new()
        .route("/chat/completions", post(handle::<Chat>))
        .route("/completions", post(handle::<Completions>))
        .route("/embeddings", post(handle::<Embeddings>))
        .route("/responses", post(handle::<Responses>))
        .layer(middleware::from_fn(require_api_version))
}

async fn require_api_version(request: Request, next: Next) -> Response {
    let versioned = request
        .uri()
        .query()
        .is_some_and(|q| q.split('&').any(|pair| pair.starts_with("api-version=")));
    if versioned {
        next.run(request).await
    } else {
        let body = json!({"error": {"code": "404", "message": "Resource not found"}});
        (StatusCode::NOT_FOUND, axum::Json(body)).into_response()
    }
}
