//! `sluice plan INPUT [run flags]`: a dry run that sends nothing. It reads the input as
//! `run` would and says what the batch is (requests by endpoint and model, prompt tokens
//! in each model's encoding, the output allowed), what it will cost (prompts alone up to
//! prompts plus every output allowance), how long it must take under the given limits and
//! which limit binds, and what would go wrong: the lines `validate` rejects and the bodies
//! that cost money later (no messages or model, max_tokens above the model's limit, a
//! prompt above its context window). Token counting runs on every core.

mod report;
mod tally;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc;

use anyhow::Context;
use clap::Args;
use futures::StreamExt;
use sluice::Request;
use sluice::cost::PriceTable;
use sluice::input::{self, InputItem};
use sluice::journal::IdSet;

use super::client_config::{CostArgs, LimitArgs, ServerArgs};
use super::input_args::InputArgs;
use super::{EXIT_FAILURES, EXIT_OK};
pub use report::Plan;
use tally::Tally;

/// Flags of `sluice plan`: those of `run`, so a run's command line can be planned by
/// changing one word.
#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[command(flatten)]
    pub cost: CostArgs,
    #[command(flatten)]
    pub server: ServerArgs,
    /// Accepted for a run's command line; a plan writes nothing.
    #[arg(short, long, hide = true)]
    pub output: Option<PathBuf>,
    /// Print the plan as one JSON object (documented in README, "Plan").
    #[arg(long)]
    pub json: bool,
    /// Lines to show of each kind of problem.
    #[arg(long, default_value_t = 5)]
    pub show: usize,
}

/// Requests handed to a counting thread at once.
const CHUNK: usize = 256;

pub async fn run(args: PlanArgs) -> anyhow::Result<ExitCode> {
    let prices = args.cost.table()?;
    let options = args.input.options()?;
    let path = &args.input.input;
    let started = std::time::Instant::now();
    let mut items = input::open(path, options)
        .await
        .with_context(|| format!("cannot open {}", path.display()))?;
    let workers = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
    let (tx, rx) = mpsc::sync_channel::<Vec<(u64, Request)>>(workers * 4);
    let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
    let counters: Vec<_> = (0..workers)
        .map(|_| {
            let (rx, prices) = (rx.clone(), prices.clone());
            std::thread::spawn(move || count(&rx, &prices))
        })
        .collect();
    let mut plan = Plan::default();
    let mut ids = IdSet::default();
    let mut chunk = Vec::with_capacity(CHUNK);
    let mut bytes = 0u64;
    while let Some(item) = items.next().await {
        match item {
            InputItem::Request(line, request) => {
                bytes += request.body.len() as u64;
                if !ids.insert(&request.custom_id) {
                    plan.invalid("duplicate_custom_id", line, args.show);
                    continue;
                }
                chunk.push((line, request));
                if chunk.len() == CHUNK {
                    let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
                    // Blocks while the counters are behind: memory stays bounded. The
                    // counters need nothing of this runtime, so they go on meanwhile.
                    tx.send(full).context("a counting thread stopped")?;
                }
            }
            InputItem::Invalid(e) => plan.invalid(e.kind.name(), e.line, args.show),
            InputItem::Failed(e) => anyhow::bail!("cannot read {}: {e}", path.display()),
            InputItem::End(lines) => plan.lines = lines,
        }
    }
    if !chunk.is_empty() {
        tx.send(chunk).context("a counting thread stopped")?;
    }
    drop(tx);
    let mut tally = Tally::default();
    for c in counters {
        tally.merge(
            c.join()
                .map_err(|_| anyhow::anyhow!("a counting thread failed"))?,
        );
    }
    // The file's size when it is one; what was read of stdin otherwise.
    let bytes = std::fs::metadata(path)
        .ok()
        .filter(std::fs::Metadata::is_file)
        .map_or(bytes, |m| m.len());
    plan.fill(tally, &args, &prices, path, bytes, started.elapsed());
    if args.json {
        println!("{}", serde_json::to_string_pretty(&plan.to_json())?);
    } else {
        print!("{}", plan.to_text(args.show));
    }
    Ok(ExitCode::from(if plan.has_problems() {
        EXIT_FAILURES
    } else {
        EXIT_OK
    }))
}

/// One counting thread: takes chunks until the reader is done.
fn count(rx: &std::sync::Mutex<mpsc::Receiver<Vec<(u64, Request)>>>, prices: &PriceTable) -> Tally {
    let mut tally = Tally::default();
    loop {
        let next = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
        let Ok(chunk) = next else {
            return tally;
        };
        for (line, request) in &chunk {
            tally.add(*line, request, prices);
        }
    }
}
