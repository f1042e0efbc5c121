//! `sluice demo`: a real batch against the built-in simulator, with realistic limits,
//! latency and a few faults, so a newcomer sees the engine work without a key or network.

use std::io::Write;
use std::num::{NonZeroU64, NonZeroUsize};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use sluice::Limits;
use sluice::durable::{DurableOptions, DurableRun};
use sluice::limits::Budget;

use super::client_config::ClientConfig;
use super::run::run_observer;
use super::values::ConcurrencyArg;
use sluice_sim::{Fault, Latency, Sim};

use super::execute::execute;
use super::signals::Signals;
use super::summary;
use crate::progress::{Progress, ProgressArgs};

/// Flags of `sluice demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Requests in the batch.
    #[arg(long, default_value_t = 2000)]
    requests: usize,
    /// Requests per minute of the simulated account (sluice is told the same).
    #[arg(long, default_value_t = 6000)]
    rpm: u64,
    /// Tokens per minute of the simulated account (sluice is told the same).
    #[arg(long, default_value_t = 1_000_000)]
    tpm: u64,
    /// Folder for the generated input and the results [default: a new temporary folder].
    #[arg(long)]
    dir: Option<PathBuf>,
    #[command(flatten)]
    progress: ProgressArgs,
}

const TOPICS: [&str; 8] = [
    "the water cycle",
    "how a bicycle stays upright",
    "why the sky is blue",
    "the history of the printing press",
    "how vaccines train the immune system",
    "what a hash table is",
    "how tides work",
    "the rules of chess",
];

pub async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let rpm = NonZeroU64::new(args.rpm).context("--rpm must be above 0")?;
    let tpm = NonZeroU64::new(args.tpm).context("--tpm must be above 0")?;
    let sim = Sim::builder()
        .rpm(Some(rpm))
        .tpm(Some(tpm))
        .latency(Latency {
            ttft: Duration::from_millis(150),
            per_token: Duration::from_millis(4),
            jitter: 0.3,
        })
        .fault(Fault::Status(503), 0.01)
        .fault(Fault::Status(500), 0.005)
        .fault(Fault::Reset, 0.005)
        .fault(Fault::MalformedJson, 0.005)
        .seed(7)
        .build()?
        .spawn()
        .await
        .context("cannot start the simulator")?;

    let dir = match args.dir {
        Some(d) => d,
        None => std::env::temp_dir().join(format!("sluice-demo-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let input_path = dir.join("requests.jsonl");
    let output_path = dir.join("results.jsonl");
    write_requests(&input_path, args.requests)?;

    eprintln!(
        "sluice demo: {} requests to a simulated API at {} ({} rpm, {} tpm, ~150 ms to first token, 2% faults)",
        args.requests,
        sim.base_url(),
        rpm,
        tpm
    );
    let mut progress = Progress::new();
    let mut config = ClientConfig::local(
        sim.base_url(),
        ConcurrencyArg {
            max: NonZeroUsize::new(128).expect("128 > 0"),
            auto: false,
        },
    );
    config.limits = Limits {
        rpm: Budget::Fixed(rpm),
        tpm: Budget::Fixed(tpm),
        ..Limits::default()
    };
    let client = config.build(run_observer(progress.shared.clone()))?;
    let mut signals = Signals::install()?;
    let mut fresh = DurableOptions::new(&input_path, &output_path);
    fresh.restart = true;
    let paths = fresh.paths.clone();
    let durable = DurableRun::open(fresh)?;
    let drain = Duration::from_secs(30);
    progress.shared.set_total(args.requests as u64);
    progress.start(&args.progress, client.clone()).await?;
    let report = execute(&client, durable, &mut signals, drain, &progress.shared).await;
    let seen = progress.finish().await;
    let report = report?;
    let figures = report.figures(Some(args.requests as u64), 0, None, config.prices.taken());
    let input_name = input_path.display().to_string();
    crate::progress::write_stats(
        &paths.stats,
        &input_name,
        &paths.output,
        &client.stats(),
        &figures,
        &seen,
    )
    .with_context(|| format!("cannot write {}", paths.stats.display()))?;
    let stats = sim.stats();
    sim.shutdown().await;

    eprint!(
        "{}",
        summary::render(
            &client.stats(),
            report.invalid_lines,
            report.wall,
            &report.messages,
            summary::Lines {
                total: Some(args.requests as u64),
                done: client.stats().finished() + report.invalid_lines,
                resumed: 0,
            },
            summary::Money {
                earlier: None,
                taken: config.prices.taken(),
            }
        )
    );
    if let Some(line) = crate::progress::summary_line(&seen.shares) {
        eprintln!("{line}");
    }
    eprintln!(
        "  output       {}\n  errors       {}\n  stats        {} (`sluice report` draws it)",
        paths.output.display(),
        paths.errors.display(),
        paths.stats.display()
    );
    eprintln!(
        "  simulator    {} received, {} answered 429, busiest second {} requests (limit {}/min)",
        stats.received,
        stats.total_429(),
        stats.peak.requests_1s,
        rpm
    );
    Ok(ExitCode::from(report.exit_code(0)))
}

fn write_requests(path: &PathBuf, n: usize) -> anyhow::Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut w = std::io::BufWriter::new(file);
    for i in 0..n {
        let topic = TOPICS[i % TOPICS.len()];
        let line = serde_json::json!({
            "custom_id": format!("demo-{i:05}"),
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {
                "model": "gpt-4o-mini",
                "messages": [
                    {"role": "system", "content": "You are a concise teacher."},
                    {"role": "user", "content": format!("In two sentences, explain {topic}. (variant {i})")}
                ],
                "max_tokens": 48 + (i % 5) as u64 * 16,
            }
        });
        writeln!(w, "{line}")?;
    }
    w.flush()?;
    Ok(())
}
