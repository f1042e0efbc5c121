//! `sluice validate INPUT`: check every line without sending anything.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use futures::StreamExt;
use sluice::input::{self, Format, InputItem, InputOptions, PromptOptions};
use sluice::journal::IdSet;

use super::{EXIT_FAILURES, EXIT_OK};

/// Flags of `sluice validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The input to check; `-` for stdin.
    input: PathBuf,
    /// Check as plain prompts for this model (otherwise the Batch API format is expected
    /// unless the first line is not JSON).
    #[arg(long)]
    model: Option<String>,
    /// Longer lines are errors.
    #[arg(long, default_value_t = 16 * 1024 * 1024)]
    max_line_bytes: usize,
    /// Errors to print before the summary (all are counted).
    #[arg(long, default_value_t = 20)]
    show: usize,
}

pub async fn run(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let options = InputOptions {
        format: if args.model.is_some() {
            Format::Auto
        } else {
            Format::Batch
        },
        prompts: args.model.map(|model| PromptOptions {
            model,
            system: None,
            max_tokens: None,
            temperature: None,
        }),
        max_line_bytes: args.max_line_bytes,
        ..InputOptions::default()
    };
    let mut items = input::open(&args.input, options)
        .await
        .with_context(|| format!("cannot open {}", args.input.display()))?;
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
                        args.input.display(),
                        request.custom_id
                    ));
                }
            }
            InputItem::Invalid(e) => {
                *by_kind.entry(e.kind.name()).or_default() += 1;
                show(e.to_string());
            }
            InputItem::Failed(e) => anyhow::bail!("cannot read {}: {e}", args.input.display()),
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
