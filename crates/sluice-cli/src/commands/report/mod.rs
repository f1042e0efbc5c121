//! `sluice report STATS.json -o report.html`: one self-contained HTML page (no network at
//! view time: the figures, the script that draws them as SVG and the styles are all in
//! the file) with charts of throughput and tokens over time, the binding limit over time,
//! the latency distribution, 429s and retries, cost, and the summary table.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use super::{EXIT_OK, usage};

/// The page; `/*STATS*/null` is replaced by the statistics.
const TEMPLATE: &str = include_str!("report.html");

/// Flags of `sluice report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A run's statistics file (`results.sluice-stats.json`, or `--stats-json` of `run`).
    stats: PathBuf,
    /// Where the page goes.
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
}

pub async fn run(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let text = match std::fs::read_to_string(&args.stats) {
        Ok(t) => t,
        Err(e) => usage!("cannot read {}: {e}", args.stats.display()),
    };
    let stats: serde_json::Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => usage!(
            "{}:{}: not JSON ({e}); give the .sluice-stats.json a run wrote",
            args.stats.display(),
            e.line()
        ),
    };
    if stats["schema"] != "sluice.stats/1" {
        usage!(
            "{}: not a sluice statistics file (its schema is {}, expected sluice.stats/1)",
            args.stats.display(),
            stats["schema"]
        );
    }
    let html = render(&stats)?;
    sluice::journal::replace_atomically(&args.output, html.as_bytes())
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    eprintln!("sluice: report written to {}", args.output.display());
    Ok(ExitCode::from(EXIT_OK))
}

/// The page for `stats`. The JSON is embedded in a script: `<` is escaped so no value can
/// close the script element.
pub fn render(stats: &serde_json::Value) -> anyhow::Result<String> {
    let json = serde_json::to_string(stats)?.replace('<', "\\u003c");
    Ok(TEMPLATE.replace("/*STATS*/null", &json))
}
