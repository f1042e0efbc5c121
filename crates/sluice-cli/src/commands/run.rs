//! `sluice run`: send a whole file of requests and write every result.

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use sluice::cost::{PriceTable, SpendCap};
use sluice::durable::{DurableError, DurableOptions, DurableRun};
use sluice::journal::{GuardError, JournalError, JournalPaths, Recovered, SyncPolicy};
use sluice::{Event, Halt, HaltReason, Observer};

use super::client_config::{ClientConfig, CostArgs, LimitArgs, ServerArgs};
use super::execute::execute;
use super::input_args::InputArgs;
use super::line_count::count_lines;
use super::resume_hint::ResumeHint;
use super::signals::Signals;
use super::values;
use super::{EXIT_HALTED, EXIT_LOCKED, EXIT_SPEND_CAP, summary, usage};
use crate::progress::{self, Progress, ProgressArgs, Shared, write_stats};

/// Flags of `sluice run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// Where successful results go (OpenAI Batch output lines).
    #[arg(short, long)]
    pub output: PathBuf,
    /// Where permanent failures go [default: OUTPUT's name with .errors.jsonl].
    #[arg(long)]
    pub errors: Option<PathBuf>,
    /// Where the run's statistics go at the end [default: OUTPUT's name with
    /// .sluice-stats.json].
    #[arg(long, value_name = "FILE")]
    pub stats_json: Option<PathBuf>,
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[command(flatten)]
    pub cost: CostArgs,
    /// Discard the results and state of an earlier run to the same output and start over.
    #[arg(long)]
    restart: bool,
    /// Take the failures of an earlier run out of the errors file and read (and send)
    /// their lines again.
    #[arg(long)]
    retry_failed: bool,
    /// When results are forced to disk: `always`, every N seconds (`1s`, the default,
    /// `250ms`; sooner once 4 MiB of results wait), or `never` (the OS decides; a crash of
    /// sluice still loses nothing written).
    #[arg(long, default_value = "1s", value_parser = values::parse_sync)]
    sync: SyncPolicy,
    /// The shape of the records: `openai` (the Batch API's output lines) or `anthropic`
    /// (Message Batches result lines: `result.type` succeeded or errored, with the message
    /// or Anthropic's error object). Keep it when resuming.
    #[arg(long, default_value = "openai", value_parser = parse_record_format)]
    output_format: sluice::output::RecordFormat,
    /// Seconds to let requests in flight finish after Ctrl-C or SIGTERM.
    #[arg(long, default_value = "30", value_parser = values::seconds)]
    drain_timeout: Duration,
    #[command(flatten)]
    pub progress: ProgressArgs,
    /// Threads that send and receive [default: 2, or 1 on a machine with one core]. Two
    /// keep a local server's and sluice's work overlapping (96 % of oha's rate against
    /// 78 % with one in paired runs, docs/BENCHMARKS.md); one costs the least CPU a
    /// request, and sends tens of thousands a second, far above any provider's limits.
    #[arg(long, value_parser = values::threads)]
    pub threads: Option<NonZeroUsize>,
}

impl RunArgs {
    /// The runtime's threads: as asked, or two where the machine has two cores.
    pub fn threads(&self) -> NonZeroUsize {
        self.threads.unwrap_or_else(|| {
            let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
            NonZeroUsize::new(cores.min(2)).unwrap_or(NonZeroUsize::MIN)
        })
    }

    /// The files of this run.
    pub fn paths(&self) -> JournalPaths {
        let mut paths = JournalPaths::for_output(&self.output, self.errors.as_deref());
        if let Some(stats) = &self.stats_json {
            paths.stats = stats.clone();
        }
        paths
    }
}

/// The observer a run's client reports to: the display. (The requests in flight, for the
/// checkpoint, are the library's to follow: [`sluice::BatchRun::in_flight`].)
pub fn run_observer(display: Arc<Shared>) -> Observer {
    Arc::new(move |event: &Event<'_>| display.on_event(event))
}

fn parse_record_format(s: &str) -> Result<sluice::output::RecordFormat, String> {
    s.parse()
}

/// Runs `args` to the end (or to a signal, or to a halt) and prints the summary.
pub async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let mut signals = Signals::install()?;
    let mut progress = Progress::new();
    let input_path = &args.input.input;
    let endpoint = args.server.endpoint(Some(input_path))?;
    let mut config = ClientConfig::from_flags(&args.server, endpoint, &args.limits, &args.cost)?;
    let mut options = DurableOptions::new(input_path, &args.output);
    options.paths = args.paths();
    let input_options = args.input.options()?;
    options.input_options = input_options.clone();
    options.restart = args.restart;
    options.retry_failed = args.retry_failed;
    options.sync = args.sync;
    options.format = args.output_format;
    // The input's priority pass runs beside the scan of what earlier runs wrote.
    let durable = match DurableRun::open(options) {
        Ok(run) => run,
        Err(DurableError::Journal(JournalError::Guard(e @ GuardError::Locked { .. }))) => {
            eprintln!("sluice: {e} (another -o)");
            return Ok(ExitCode::from(EXIT_LOCKED));
        }
        Err(DurableError::Journal(
            e @ (JournalError::InputChanged { .. } | JournalError::OutputWithoutState { .. }),
        )) => usage!("{e} (--restart starts over; another -o writes elsewhere)"),
        Err(DurableError::Journal(JournalError::Guard(e))) => {
            usage!("{e} (-o, --errors and --stats-json name the files)")
        }
        Err(e) => return Err(e.into()),
    };
    let recovered = durable.recovered();
    if recovered.resumed && !args.progress.quiet {
        report_resume(&args, recovered);
    }
    let earlier = earlier_spend(recovered, &config.prices);
    if let Some(cap) = args.cost.max_cost {
        config.spend_cap = Some(SpendCap::new(cap, earlier.dollars));
        if earlier.unpriced > 0 {
            eprintln!(
                "sluice: {} earlier results name a model without a price; their cost is not counted against --max-cost",
                earlier.unpriced
            );
        }
    }
    if recovered.resumed {
        progress.shared.set_earlier_cost(earlier.dollars);
    }
    let client = config.build(run_observer(progress.shared.clone()))?;
    if client.counts_tokens()
        && let Some(model) = sluice::input::first_model(input_path, &input_options)
    {
        // Building an encoding takes tens of milliseconds (45 for o200k); begun now, on a
        // thread of its own, it overlaps the rest of the start-up instead of holding back
        // the first request. Its tens of MB of scratch go back to the system at once; only
        // then is freed memory kept for the requests.
        std::thread::spawn(move || {
            sluice::estimate::warm_up(&model);
            crate::allocator::for_sending();
        });
    } else {
        crate::allocator::for_sending();
    }
    let recovered_lines = recovered.done.len();
    progress.shared.set_resumed(recovered_lines);
    if let Some(lines) = recovered.total_lines {
        // Counted by an earlier run of this very input (its fingerprint was checked).
        progress.shared.set_total(lines);
    } else if input_path.as_os_str() != "-" {
        let (path, shared) = (input_path.display().to_string(), progress.shared.clone());
        tokio::task::spawn_blocking(move || {
            if let Some(lines) = count_lines(&path) {
                shared.set_total(lines);
            }
        });
    }
    let resent = recovered.previously_in_flight.len() as u64;
    let earlier_failures = recovered.failed;
    let resumed = recovered.resumed;
    let input_name = if input_path.as_os_str() == "-" {
        "<stdin>".to_owned()
    } else {
        input_path.display().to_string()
    };
    progress.start(&args.progress, client.clone()).await?;
    let outcome = execute(
        &client,
        durable,
        &mut signals,
        args.drain_timeout,
        &progress.shared,
    )
    .await;
    let display = progress.shared.clone();
    let seen = progress.finish().await;
    let outcome = outcome?;
    let quiet = args.progress.quiet;
    let stats = client.stats();
    let mut text = summary::render(
        &stats,
        outcome.invalid_lines,
        outcome.wall,
        &outcome.messages,
        summary::Lines {
            total: display.total(),
            done: recovered_lines + stats.finished() + outcome.invalid_lines,
            resumed: recovered_lines,
        },
        summary::Money {
            earlier: resumed.then_some(earlier.dollars),
            taken: config.prices.taken(),
        },
    );
    if earlier_failures > 0 {
        text.push_str(&format!(
            "  earlier      {earlier_failures} failures recorded by earlier runs stay in the errors file (--retry-failed sends them again)\n"
        ));
    }
    if resent > 0 {
        text.push_str(&format!(
            "  resent       {resent} requests were in flight when the last run stopped and were sent again (possible duplicate calls)\n"
        ));
    }
    if let Some(line) = progress::summary_line(&seen.shares) {
        text.push_str(&line);
        text.push('\n');
    }
    if !config.endpoints.is_empty() {
        text.push_str(&summary::endpoints(&client.endpoints()));
    }
    let paths = args.paths();
    let figures = outcome.figures(
        display.total(),
        recovered_lines,
        resumed.then_some(earlier.dollars),
        config.prices.taken(),
    );
    write_stats(
        &paths.stats,
        &input_name,
        &paths.output,
        &client.stats(),
        &figures,
        &seen,
    )
    .with_context(|| format!("cannot write {}", paths.stats.display()))?;
    if !quiet {
        eprint!("{text}");
        eprintln!(
            "  output       {}\n  errors       {}",
            paths.output.display(),
            paths.errors.display()
        );
    }
    let hint = ResumeHint::new(&args);
    if let Some(stop) = &outcome.cap_stop {
        eprintln!("sluice: stopped admitting requests: {stop}");
        eprintln!(
            "{}",
            hint.resume("to send the rest, raise --max-cost (or add prices with --prices) and")
        );
        return Ok(ExitCode::from(EXIT_SPEND_CAP));
    }
    if let Some(halt) = &outcome.halt {
        eprintln!(
            "sluice: stopped early: {}",
            halt_advice(halt, &args, &config)
        );
        eprintln!("{}", hint.resume("then, to send the requests left"));
        return Ok(ExitCode::from(EXIT_HALTED));
    }
    if let Some(signal) = outcome.interrupted
        && !quiet
    {
        eprintln!(
            "sluice: stopped by {signal}; the results so far are written.\n{}",
            hint.resume("to resume")
        );
    } else if outcome.failed + outcome.invalid_lines + earlier_failures > 0 && !quiet {
        eprintln!(
            "sluice: {} lines failed (their records are in {}); after fixing the cause, send them again with\n{}",
            outcome.failed + outcome.invalid_lines + earlier_failures,
            paths.errors.display(),
            hint.retry_failed()
        );
    }
    Ok(ExitCode::from(outcome.exit_code(earlier_failures)))
}

/// What earlier runs of an output spent.
struct EarlierSpend {
    /// Dollars, at today's prices, of the results whose model has a price.
    dollars: f64,
    /// Results whose model has none.
    unpriced: u64,
}

fn earlier_spend(recovered: &Recovered, prices: &PriceTable) -> EarlierSpend {
    let mut spend = EarlierSpend {
        dollars: 0.0,
        unpriced: 0,
    };
    for (model, usage) in &recovered.billed {
        match prices.lookup(model) {
            Some(price) => spend.dollars += price.cost(*usage),
            None => spend.unpriced += 1,
        }
    }
    spend
}

/// Says what a resumed run found.
fn report_resume(args: &RunArgs, recovered: &Recovered) {
    let found = [
        (recovered.retrying, "failed lines read again"),
        (
            recovered.repaired_bytes,
            "bytes of a torn last record cut off",
        ),
        (
            recovered.unreadable,
            "damaged lines removed (not whole JSON records, as after a power loss; their requests are sent again)",
        ),
        (
            recovered.duplicates,
            "second records of input lines that already had one removed",
        ),
    ];
    let extra: String = found
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("; {n} {what}"))
        .collect();
    eprintln!(
        "sluice: resuming {}: {} lines already done ({} ok, {} failed){extra}",
        args.output.display(),
        recovered.done.len(),
        recovered.ok,
        recovered.failed,
    );
}

/// One line on what stopped the run and what to do about it.
fn halt_advice(halt: &Halt, args: &RunArgs, config: &ClientConfig) -> String {
    let said = &halt.error.message;
    match halt.reason {
        HaltReason::Unauthorized => format!(
            "the server refused the API key ({said}); check {} (or --api-key-env, --provider, \
             --auth, --no-auth)",
            config.key_env
        ),
        HaltReason::Forbidden => format!(
            "the key has no access to this API or model ({said}); check the key's project and permissions"
        ),
        HaltReason::PaymentRequired => {
            format!("the account must pay first ({said}); add credits to the account")
        }
        HaltReason::InsufficientQuota => format!(
            "the account's quota or spending limit is used up ({said}); raise it or wait for it to reset"
        ),
        HaltReason::NotFound => format!(
            "the URL does not exist ({said}); check --base-url ({}), which usually ends in /v1, \
             and --provider ({})",
            config.base_url, config.provider
        ),
        HaltReason::Redirect => said.clone(),
        HaltReason::Unreachable => format!(
            "nothing answered at {} for {} s ({said}); check --base-url and that the server is running",
            config.base_url,
            args.server.unreachable_timeout.as_secs_f64()
        ),
        _ => said.clone(),
    }
}
