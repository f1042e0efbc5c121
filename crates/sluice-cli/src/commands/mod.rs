//! Subcommands and the exit codes they share.

mod client_config;
mod demo;
mod execute;
mod export;
mod input_args;
mod line_count;
mod plan;
mod report;
mod resume_hint;
mod run;
mod signals;
mod sim;
mod status;
mod summary;
mod validate;
mod values;

pub(crate) use values::positive_seconds;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Every request succeeded.
pub const EXIT_OK: u8 = 0;
/// Something went wrong inside sluice or its environment (an unwritable file, say).
pub const EXIT_INTERNAL: u8 = 1;
/// The command line is wrong (clap uses the same code for flags it rejects).
pub const EXIT_USAGE: u8 = 2;
/// Some requests failed for good; they are in the errors file.
pub const EXIT_FAILURES: u8 = 3;
/// The run stopped early because its requests cannot succeed as configured (a refused
/// key, a wrong URL, no quota, nothing listening). Nothing is lost: fix the cause and run
/// the same command again.
pub const EXIT_HALTED: u8 = 4;
/// Another run is writing the same output.
pub const EXIT_LOCKED: u8 = 5;
/// `sluice status`: the run is not complete (lines pending, or a run in progress).
pub const EXIT_INCOMPLETE: u8 = 6;
/// `--max-cost` stopped the run before its end: what was in flight finished and is
/// written; run again with a higher cap to send the rest.
pub const EXIT_SPEND_CAP: u8 = 7;

/// A mistake in what the user asked for, as opposed to a failure while doing it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Fails with a [`UsageError`].
macro_rules! usage {
    ($($arg:tt)*) => {
        return Err(anyhow::Error::new($crate::commands::UsageError(format!($($arg)*))))
    };
}
pub(crate) use usage;

/// Run large batches of LLM API requests as fast as the provider allows, and never faster.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log each attempt's outcome and each limiter decision on stderr (-v); `RUST_LOG`
    /// overrides. The key never appears in any log.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Send a file of requests within rate limits and write every result.
    Run(Box<run::RunArgs>),
    /// Run a 2,000-request batch against the built-in simulator and show the summary.
    Demo(demo::DemoArgs),
    /// Serve an OpenAI-compatible API simulator with rate limits, latency and faults.
    Sim(sim::SimArgs),
    /// Tell how far a run got: done, failed and pending requests.
    Status(status::StatusArgs),
    /// Check an input file without sending anything; summarize its errors by kind.
    Validate(validate::ValidateArgs),
    /// Say what a batch is, costs and takes, and what would go wrong, sending nothing.
    Plan(Box<plan::PlanArgs>),
    /// Write one self-contained HTML page of charts and figures from a run's statistics.
    Report(report::ReportArgs),
    /// Write a run's results as CSV or JSONL, one row per input line in input order.
    Export(export::ExportArgs),
}

impl Cli {
    /// The log filter when `RUST_LOG` is not set: warnings, or the engine's decisions
    /// with `-v` (and everything of sluice's with `-vv`).
    pub fn log_filter(&self) -> &'static str {
        match self.verbose {
            0 => "warn",
            1 => "warn,sluice=debug",
            _ => "warn,sluice=trace,sluice_cli=trace",
        }
    }

    /// Worker threads for the async runtime: `None` for one per core.
    pub fn threads(&self) -> Option<std::num::NonZeroUsize> {
        match &self.command {
            Command::Run(args) => Some(args.threads()),
            // The simulator serves as fast as the machine allows; the demo runs it
            // in-process beside the engine.
            Command::Sim(_) | Command::Demo(_) => None,
            Command::Status(_)
            | Command::Validate(_)
            | Command::Export(_)
            | Command::Plan(_)
            | Command::Report(_) => std::num::NonZeroUsize::new(1),
        }
    }

    /// Runs the chosen subcommand and returns the process exit code.
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        match self.command {
            Command::Run(args) => run::run(*args).await,
            Command::Demo(args) => demo::run(args).await,
            Command::Sim(args) => sim::run(args).await,
            Command::Status(args) => status::run(args).await,
            Command::Validate(args) => validate::run(args).await,
            Command::Export(args) => export::run(args).await,
            Command::Plan(args) => plan::run(*args).await,
            Command::Report(args) => report::run(args).await,
        }
    }
}
