//! Prometheus metrics during a run (`--metrics-addr`): the fourth reader of the same
//! statistics, in the text exposition format, with conventional names and units.

use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sluice::Client;
use tokio_util::sync::CancellationToken;

use super::Shared;
use super::sample::TICK_SECS;

/// Latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 600.0,
];

/// Serves `/metrics` at `addr` until `stop` is cancelled.
pub async fn serve_metrics(
    addr: SocketAddr,
    client: Client,
    shared: Arc<Shared>,
    stop: CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot serve metrics on {addr}: {e}"))?;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let (client, shared) = (client.clone(), shared.clone());
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    render(&client, &shared),
                )
            }
        }),
    );
    Ok(tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await;
    }))
}

/// The metrics now, in Prometheus' text format.
pub fn render(client: &Client, shared: &Shared) -> String {
    let stats = client.stats();
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(String, f64)]| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    let mut outcomes = vec![(r#"{outcome="ok"}"#.to_owned(), stats.ok as f64)];
    for (kind, n) in &stats.failed {
        outcomes.push((
            format!(r#"{{outcome="failed",kind="{}"}}"#, kind.code()),
            *n as f64,
        ));
    }
    metric(
        "sluice_requests_total",
        "counter",
        "Requests finished, by outcome.",
        &outcomes,
    );
    metric(
        "sluice_attempts_total",
        "counter",
        "Attempts sent.",
        &[(String::new(), stats.attempts as f64)],
    );
    metric(
        "sluice_retries_total",
        "counter",
        "Attempts after a request's first.",
        &[(String::new(), stats.retries as f64)],
    );
    metric(
        "sluice_rate_limited_total",
        "counter",
        "429 rate-limit answers received.",
        &[(String::new(), stats.rate_limited as f64)],
    );
    metric(
        "sluice_tokens_total",
        "counter",
        "Tokens the server reported, by kind.",
        &[
            (r#"{kind="prompt"}"#.to_owned(), stats.prompt_tokens as f64),
            (r#"{kind="cached"}"#.to_owned(), stats.cached_tokens as f64),
            (
                r#"{kind="completion"}"#.to_owned(),
                stats.completion_tokens as f64,
            ),
        ],
    );
    let earlier = shared.earlier_cost().unwrap_or(0.0);
    metric(
        "sluice_cost_dollars_total",
        "counter",
        "US dollars spent by the results whose model has a price, earlier runs included.",
        &[(String::new(), stats.cost + earlier)],
    );
    metric(
        "sluice_unpriced_results_total",
        "counter",
        "Successful results whose model has no price (their cost is unknown).",
        &[(String::new(), stats.unpriced as f64)],
    );
    metric(
        "sluice_in_flight_requests",
        "gauge",
        "Requests holding a concurrency permit.",
        &[(String::new(), client.in_flight() as f64)],
    );
    metric(
        "sluice_concurrency_limit",
        "gauge",
        "The most requests in flight.",
        &[(String::new(), client.concurrency().get() as f64)],
    );
    let limits = client.limits_now();
    let mut budgets = Vec::new();
    for (budget, r) in [("requests", limits.requests), ("tokens", limits.tokens)] {
        if let Some(rate) = r.rate {
            budgets.push((format!(r#"{{budget="{budget}",value="admitted"}}"#), rate));
        }
        if let Some(limit) = r.limit {
            budgets.push((format!(r#"{{budget="{budget}",value="limit"}}"#), limit));
        }
    }
    metric(
        "sluice_rate_per_minute",
        "gauge",
        "The admitted rate in force and the limit it keeps under, per minute.",
        &budgets,
    );
    let waits: Vec<(String, f64)> = shared
        .shares()
        .counts()
        .map(|(b, n)| (format!(r#"{{on="{}"}}"#, b.code()), n as f64 * TICK_SECS))
        .collect();
    metric(
        "sluice_waiting_seconds_total",
        "counter",
        "Seconds admission waited on each limiter (sampled ten times a second).",
        &waits,
    );
    let mut buckets: Vec<(String, f64)> = BUCKETS
        .iter()
        .map(|&s| {
            let n = stats.latency_count_at_most(Duration::from_secs_f64(s));
            (format!(r#"{{le="{s}"}}"#), n as f64)
        })
        .collect();
    buckets.push((r#"{le="+Inf"}"#.to_owned(), stats.ok as f64));
    let _ = writeln!(
        out,
        "# HELP sluice_request_duration_seconds Latency of successful attempts.\n\
         # TYPE sluice_request_duration_seconds histogram"
    );
    for (labels, n) in &buckets {
        let _ = writeln!(out, "sluice_request_duration_seconds_bucket{labels} {n}");
    }
    let _ = writeln!(
        out,
        "sluice_request_duration_seconds_sum {}",
        stats.latency_mean().as_secs_f64() * stats.ok as f64
    );
    let _ = writeln!(out, "sluice_request_duration_seconds_count {}", stats.ok);
    out
}
