//! `GET /v1/models` and `GET /sim/stats`.

use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::pipeline::Shared;
use crate::config::ModelPolicy;
use crate::stats::SimStats;

/// Models listed when any name is accepted.
const DEFAULT_MODELS: [&str; 6] = [
    "gpt-4o",
    "gpt-4o-mini",
    "gpt-4.1-mini",
    "gpt-5-mini",
    "text-embedding-3-small",
    "text-embedding-3-large",
];

pub(crate) async fn models(State(state): State<Shared>) -> Json<Value> {
    let names: Vec<&str> = match &state.config.models {
        ModelPolicy::Any => DEFAULT_MODELS.to_vec(),
        ModelPolicy::Only(names) => names.iter().map(String::as_str).collect(),
    };
    let data: Vec<Value> = names
        .into_iter()
        .map(|id| json!({"id": id, "object": "model", "created": 1_700_000_000, "owned_by": "sluice-sim"}))
        .collect();
    Json(json!({"object": "list", "data": data}))
}

#[derive(Deserialize)]
pub(crate) struct StatsQuery {
    /// `?attempts=false` leaves out the per-id attempt times, which can be large.
    attempts: Option<bool>,
}

pub(crate) async fn stats(
    State(state): State<Shared>,
    Query(q): Query<StatsQuery>,
) -> Json<SimStats> {
    let mut stats = state.recorder.snapshot(state.now());
    if q.attempts == Some(false) {
        stats.attempts.clear();
    }
    Json(stats)
}

/// `POST /sim/limits` with `{"rpm": 3000}` (any of rpm, tpm, itpm, otpm; `null` or 0 lifts
/// one): the limits change from now on; the answer states those in force.
pub(crate) async fn set_limits(
    State(state): State<Shared>,
    Json(change): Json<crate::LimitChange>,
) -> Json<Value> {
    let l = state.set_limits(change);
    let n = |v: Option<std::num::NonZeroU64>| v.map(std::num::NonZeroU64::get);
    Json(json!({"rpm": n(l.rpm), "tpm": n(l.tpm), "itpm": n(l.itpm), "otpm": n(l.otpm)}))
}
