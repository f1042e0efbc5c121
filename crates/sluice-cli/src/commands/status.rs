//! `sluice status OUT`: how far a run got, from its files alone. It only reads: a run in
//! progress may be writing them, and damage is repaired by the next run, not here.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use sluice::journal::{JournalPaths, LineSet, read_state, running, scan};

use super::line_count::count_lines;
use super::{EXIT_FAILURES, EXIT_INCOMPLETE, EXIT_OK};

/// Flags of `sluice status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The output file of the run (`-o` of `sluice run`).
    output: PathBuf,
    /// The errors file, if it was not the default.
    #[arg(long)]
    errors: Option<PathBuf>,
}

/// Exit 0 when the run is complete and every line succeeded, 3 when it is complete with
/// failures, 6 while it is incomplete (lines pending, or a run in progress).
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
    let holder =
        running(&paths.lock).with_context(|| format!("cannot read {}", paths.lock.display()))?;
    let mut done = LineSet::default();
    let (mut ok, mut failed, mut duplicates) = (0u64, 0u64, 0u64);
    let mut by_code = std::collections::BTreeMap::<String, u64>::new();
    let mut damaged = 0;
    for (path, is_errors) in [(&paths.output, false), (&errors, true)] {
        let report = scan(path, |r| {
            if let Some(line) = r.line
                && !done.insert(line)
            {
                duplicates += 1;
                return false;
            }
            if is_errors {
                failed += 1;
                *by_code
                    .entry(r.error_code.unwrap_or_else(|| "unknown".into()))
                    .or_default() += 1;
            } else {
                ok += 1;
            }
            true
        })
        .with_context(|| format!("cannot read {}", path.display()))?;
        damaged += report.unreadable;
    }
    let total = match state.total_lines {
        Some(t) => Some(t),
        None => count_lines(&state.input.path),
    };
    println!("input    {}", state.input.path);
    println!("done     {ok} ok, {failed} failed");
    for (code, n) in &by_code {
        println!("           {code}: {n}");
    }
    let pending = total.map(|t| t.saturating_sub(ok + failed));
    match pending {
        Some(p) => println!("pending  {p}"),
        None => println!("pending  unknown (the input cannot be read)"),
    }
    if damaged + duplicates > 0 {
        println!(
            "damaged  {damaged} lines that are not whole records and {duplicates} second records of one line; \
             the next run of the same command removes them (and sends those lines again)"
        );
    }
    let state_line = match holder {
        Some(pid) => format!(
            "running{}: a run is writing these files now",
            pid.map(|p| format!(" (process {p})")).unwrap_or_default()
        ),
        None if state.complete && damaged + duplicates == 0 => "complete".to_owned(),
        None => "incomplete: run the same command again to resume".to_owned(),
    };
    println!("state    {state_line}");
    let incomplete = holder.is_some()
        || !state.complete
        || damaged + duplicates > 0
        || pending.is_none_or(|p| p > 0);
    Ok(ExitCode::from(if incomplete {
        EXIT_INCOMPLETE
    } else if failed > 0 {
        EXIT_FAILURES
    } else {
        EXIT_OK
    }))
}
