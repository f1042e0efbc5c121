//! `sluice status OUT`: how far a run got, from its files alone.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use sluice::journal::{JournalPaths, read_state, scan};

/// Flags of `sluice status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The output file of the run (`-o` of `sluice run`).
    output: PathBuf,
    /// The errors file, if it was not the default.
    #[arg(long)]
    errors: Option<PathBuf>,
}

pub async fn run(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let paths = JournalPaths::for_output(&args.output, args.errors.as_deref());
    let state = read_state(&paths.state).with_context(|| {
        format!(
            "no run state at {} (has `sluice run ... -o {}` been run?)",
            paths.state.display(),
            args.output.display()
        )
    })?;
    let errors = if args.errors.is_some() {
        paths.errors.clone()
    } else {
        state.errors.clone()
    };
    let mut ok = 0u64;
    let mut failed = 0u64;
    let mut by_code = std::collections::BTreeMap::<String, u64>::new();
    scan(&paths.output, |_| ok += 1)
        .with_context(|| format!("cannot read {}", paths.output.display()))?;
    scan(&errors, |r| {
        failed += 1;
        *by_code
            .entry(r.error_code.unwrap_or_else(|| "unknown".into()))
            .or_default() += 1;
    })
    .with_context(|| format!("cannot read {}", errors.display()))?;
    let total = match state.total_lines {
        Some(t) => Some(t),
        None => count_lines(&state.input.path),
    };
    println!("input    {}", state.input.path);
    println!("done     {ok} ok, {failed} failed");
    for (code, n) in &by_code {
        println!("           {code}: {n}");
    }
    match total {
        Some(t) => println!("pending  {}", t.saturating_sub(ok + failed)),
        None => println!("pending  unknown (the input cannot be read)"),
    }
    println!(
        "state    {}",
        if state.complete {
            "complete"
        } else {
            "incomplete: run the same command again to resume"
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// Lines in a file (a last line without a newline counts), or `None` for stdin or an
/// unreadable file.
fn count_lines(path: &str) -> Option<u64> {
    if path == "-" {
        return None;
    }
    let bytes = std::fs::read(path).ok()?;
    let newlines = memchr::memchr_iter(b'\n', &bytes).count() as u64;
    Some(newlines + u64::from(!bytes.is_empty() && !bytes.ends_with(b"\n")))
}
