//! `sluice validate INPUT`: check every line without sending anything.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use futures::StreamExt;
use sluice::input::{self, InputItem};
use sluice::journal::IdSet;

use super::input_args::InputArgs;
use super::{EXIT_FAILURES, EXIT_OK};

/// Flags of `sluice validate`: the same input flags as `sluice run`, so that the two read
/// every file alike.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    input: InputArgs,
    /// Errors to print before the summary (all are counted).
    #[arg(long, default_value_t = 20)]
    show: usize,
}

pub async fn run(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let options = args.input.options()?;
    let path: &PathBuf = &args.input.input;
    let mut items = input::open(path, options)
        .await
        .with_context(|| format!("cannot open {}", path.display()))?;
    let mut ids = IdSet::default();
    let mut ok = 0u64;
    let mut by_kind: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut shown = 0;
    let mut show = |message: String| {
        if shown < args.show {
            eprintln!("{message}");
        }
        shown += 1;
    };
    while let Some(item) = items.next().await {
        match item {
            InputItem::Request(line, request) => {
                if ids.insert(&request.custom_id) {
                    ok += 1;
                } else {
                    *by_kind.entry("duplicate_custom_id").or_default() += 1;
                    show(format!(
                        "{}:{line}: custom_id `{}` already appears earlier",
                        path.display(),
                        request.custom_id
                    ));
                }
            }
            InputItem::Invalid(e) => {
                *by_kind.entry(e.kind.name()).or_default() += 1;
                show(e.to_string());
            }
            InputItem::Failed(e) => anyhow::bail!("cannot read {}: {e}", path.display()),
            InputItem::End(_) => break,
        }
    }
    let bad: u64 = by_kind.values().sum();
    println!("{ok} valid lines, {bad} invalid");
    for (kind, n) in &by_kind {
        println!("  {kind}: {n}");
    }
    Ok(ExitCode::from(if bad == 0 {
        EXIT_OK
    } else {
        EXIT_FAILURES
    }))
}
