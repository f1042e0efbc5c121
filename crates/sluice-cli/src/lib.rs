//! The `sluice` command as a library: [`main_with`] runs it with given arguments, for the
//! binary and for the Python package's `sluice` command (one CLI, two ways to start it).

pub mod allocator;
mod commands;
mod progress;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;

use commands::Cli;

/// Runs the command line `args` (the program name first) to its exit code. `--help` and
/// usage errors print and exit the process, as clap does.
pub fn main_with<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = Cli::parse_from(args);

    init_tracing(cli.log_filter());
    let runtime = match runtime(cli.threads()) {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("sluice: cannot start the async runtime: {err}");
            return ExitCode::from(commands::EXIT_INTERNAL);
        }
    };
    // The command runs as a task on the worker threads rather than on the main thread, so
    // that waking it (once per batch of results) does not cost a cross-thread futex call.
    let outcome = runtime.block_on(async {
        match tokio::spawn(cli.run()).await {
            Ok(outcome) => outcome,
            Err(e) => Err(anyhow::anyhow!("the command's task failed: {e}")),
        }
    });
    match outcome {
        Ok(code) => code,
        Err(err) => {
            eprintln!("sluice: {err:#}");
            if err.is::<commands::UsageError>() {
                ExitCode::from(commands::EXIT_USAGE)
            } else {
                ExitCode::from(commands::EXIT_INTERNAL)
            }
        }
    }
}

/// One thread (`--threads 1`) runs everything on the current-thread scheduler: no work
/// stealing, no wake-ups across threads, the least CPU a request. More threads (`run`'s
/// default is two) get the multi-thread scheduler, which keeps sluice's work and a local
/// server's overlapping on a small machine.
fn runtime(threads: Option<std::num::NonZeroUsize>) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = match threads.map(std::num::NonZeroUsize::get) {
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        Some(n) => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n);
            b
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    };
    builder.enable_all().build()
}

/// Logs go to stderr, filtered by `RUST_LOG` (default: `fallback`, from `-v`).
fn init_tracing(fallback: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(fallback));
    // No colour off a terminal or with NO_COLOR.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .try_init()
        .ok(); // already set by an earlier command in this process (the Python package)
}
