//! Subcommands and the exit codes they share.

mod sim;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Something went wrong inside sluice or its environment (documented in the README).
pub const EXIT_INTERNAL: u8 = 1;

/// Run large batches of LLM API requests as fast as the provider allows, and never faster.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve an OpenAI-compatible API simulator with rate limits, latency and faults.
    Sim(sim::SimArgs),
}

impl Cli {
    /// Runs the chosen subcommand and returns the process exit code.
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        match self.command {
            Command::Sim(args) => sim::run(args).await,
        }
    }
}
