//! One skeleton for every endpoint: intake (count, key, read, parse), the endpoint's own
//! reading of its fields, admission (quota, limits, capacity, fault draw), the faults that
//! replace an answer, then the endpoint's own answer, delivered. An endpoint says only its dialect,
//! how to read its body and how to shape its answer.

use axum::Extension;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::Value;

use super::dialect::Dialect;
use super::errors::ApiError;
use super::pipeline::{Admitted, Cost, Shared, admit, intake, reply_error};
use crate::server::ConnControl;

/// What makes a route an API endpoint.
pub(crate) trait ApiEndpoint: Send + Sync + 'static {
    /// The dialect of its errors and headers.
    const DIALECT: Dialect;
    /// What reading the body found that the answer needs besides the cost.
    type Parsed: Send + 'static;

    /// Reads the endpoint's fields from a body that has a `model` the simulator accepts;
    /// a bad field is a 400.
    fn read(body: &Value, model: &str) -> Result<(Cost, Self::Parsed), ApiError>;

    /// The answer to an admitted request.
    fn answer(a: &Admitted<'_>, parsed: Self::Parsed) -> Answer;
}

/// What an endpoint answers.
pub(crate) enum Answer {
    /// A JSON body, delivered after the answer's latency with the delivery faults.
    Json(Value),
    /// A response the endpoint built itself (a stream that keeps its own time).
    Ready(Response),
}

/// The handler of every endpoint.
pub(crate) async fn handle<E: ApiEndpoint>(
    State(state): State<Shared>,
    Extension(conn): Extension<ConnControl>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let intake = match intake(&state, E::DIALECT, &headers, body).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    let seq = intake.seq;
    let (cost, parsed) = match E::read(&intake.body, &intake.model) {
        Ok(p) => p,
        Err(e) => return reply_error(&state, E::DIALECT, e, seq),
    };
    let admitted = match admit(&state, intake, cost).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    if let Some(r) = admitted.early_fault(&conn).await {
        return r;
    }
    match E::answer(&admitted, parsed) {
        Answer::Json(body) => admitted.deliver_json(&body).await,
        Answer::Ready(response) => response,
    }
}
