//! Helpers shared by the engine's integration tests.

#![allow(dead_code)] // each test file uses its own share of these

use std::sync::{Arc, Mutex};
use std::time::Instant;

/// A server on 127.0.0.1 that answers its first request 429 with `header: value()` and
/// every later one 200, recording when each request arrived.
pub async fn retry_after_server(
    header: &'static str,
    value: fn() -> String,
) -> (String, Arc<Mutex<Vec<Instant>>>) {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    let times = Arc::new(Mutex::new(Vec::new()));
    let recorded = times.clone();
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        axum::routing::post(move || {
            let times = recorded.clone();
            async move {
                let n = {
                    let mut t = times.lock().unwrap();
                    t.push(Instant::now());
                    t.len()
                };
                if n == 1 {
                    (
                        StatusCode::TOO_MANY_REQUESTS,
                        [(header, value())],
                        r#"{"error":{"code":"rate_limit_exceeded"}}"#,
                    )
                        .into_response()
                } else {
                    (
                        StatusCode::OK,
                        r#"{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1}}"#,
                    )
                        .into_response()
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/v1"), times)
}

/// Arrival times (seconds since the simulator started) of every attempt, sorted.
pub fn arrivals(sim: &sluice_sim::SimHandle) -> Vec<f64> {
    let mut t: Vec<f64> = sim
        .stats()
        .attempts
        .values()
        .flat_map(|a| a.iter().map(|us| *us as f64 / 1e6))
        .collect();
    t.sort_by(f64::total_cmp);
    t
}
