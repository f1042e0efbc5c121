//! The statistics file written beside the output at the end of a run
//! (`results.sluice-stats.json`, or `--stats-json FILE`): the figures of the summary and
//! more, for a report or a spreadsheet. Schema `sluice.stats/1`, documented in
//! docs/PROGRESS.md.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_json::json;
use sluice::Stats;

use super::Seen;

/// What the run loop knows beyond the engine's statistics.
#[derive(Debug, Default)]
pub struct RunFigures {
    /// Input lines, if known.
    pub total_lines: Option<u64>,
    /// Lines an earlier run did.
    pub resumed: u64,
    /// Lines that could not be sent (invalid or duplicate).
    pub invalid_lines: u64,
    /// Final results by the number of attempts they took.
    pub attempts_histogram: BTreeMap<u32, u64>,
    /// Time from the start to the end.
    pub wall: Duration,
    /// Dollars earlier runs of the same output spent, when it was a resume.
    pub earlier_cost: Option<f64>,
    /// The day the prices were taken.
    pub prices_taken: String,
}

/// Upper bounds of the latency histogram's buckets, in milliseconds.
const LATENCY_BUCKETS_MS: [u64; 18] = [
    10, 25, 50, 100, 200, 300, 500, 750, 1_000, 1_500, 2_000, 3_000, 5_000, 10_000, 20_000, 60_000,
    300_000, 3_600_000,
];

/// Successful attempts per latency bucket: `[{"le_ms": 100, "count": 12}, ...]`, counts
/// of each bucket alone (not cumulative).
fn latency_histogram(stats: &Stats) -> Vec<serde_json::Value> {
    let mut below = 0;
    LATENCY_BUCKETS_MS
        .iter()
        .map(|&ms| {
            let at_most = stats.latency_count_at_most(Duration::from_millis(ms));
            let n = at_most.saturating_sub(below);
            below = at_most;
            json!({"le_ms": ms, "count": n})
        })
        .collect()
}

/// Writes the statistics of a run to `path` (replaced atomically, mode 0600).
pub fn write_stats(
    path: &Path,
    input: &str,
    output: &Path,
    stats: &Stats,
    run: &RunFigures,
    seen: &Seen,
) -> std::io::Result<()> {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let wall = run.wall.as_secs_f64();
    let waiting: serde_json::Map<String, serde_json::Value> = seen
        .shares
        .shares()
        .into_iter()
        .map(|(b, share)| (b.code().to_owned(), json!(share * wall)))
        .collect();
    let value = json!({
        "schema": "sluice.stats/1",
        "input": input,
        "output": output.display().to_string(),
        "wall_s": wall,
        "lines": {
            "total": run.total_lines,
            "resumed": run.resumed,
            "invalid": run.invalid_lines,
        },
        "requests": {
            "ok": stats.ok,
            "failed": stats.failed_total(),
            "failed_by_kind": stats
                .failed
                .iter()
                .map(|(k, n)| (k.code().to_owned(), *n))
                .collect::<BTreeMap<_, _>>(),
        },
        "attempts": {
            "total": stats.attempts,
            "retries": stats.retries,
            "rate_limited": stats.rate_limited,
            "per_request": run
                .attempts_histogram
                .iter()
                .map(|(n, count)| (n.to_string(), *count))
                .collect::<BTreeMap<_, _>>(),
        },
        "tokens": {
            "prompt": stats.prompt_tokens,
            "cached": stats.cached_tokens,
            "completion": stats.completion_tokens,
        },
        "cost": {
            "usd": stats.known_cost(),
            "unpriced_results": stats.unpriced,
            "earlier_runs_usd": run.earlier_cost,
            "prices_taken": run.prices_taken,
        },
        "latency_ms": (stats.ok > 0).then(|| json!({
            "p50": ms(stats.latency(0.5)),
            "p90": ms(stats.latency(0.9)),
            "p99": ms(stats.latency(0.99)),
            "max": ms(stats.latency_max()),
        })),
        "latency_histogram": latency_histogram(stats),
        "waiting_s": waiting,
        "series_step_s": super::sample::SERIES_STEP.as_secs_f64(),
        "series": seen.series,
    });
    let bytes = serde_json::to_vec_pretty(&value).map_err(std::io::Error::other)?;
    sluice::journal::replace_atomically(path, &bytes)
}
