//! `sluice run`: send a whole file of requests and write every result.

use std::num::{NonZeroU32, NonZeroUsize};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use sluice::input;
use sluice::journal::{
    GuardError, InputIdentity, Journal, JournalError, JournalPaths, OpenOptions, Recovered,
    SyncPolicy,
};
use sluice::limits::Algorithm;
use sluice::{
    ApiKey, AuthStyle, Backoff, Client, Event, Halt, HaltReason, Limits, RetryPolicy, StopEarly,
    is_secret_header,
};

use super::execute::execute;
use super::input_args::InputArgs;
use super::line_count::count_lines;
use super::resume_hint::ResumeHint;
use super::signals::Signals;
use super::values::{self, ConcurrencyArg, ModelLimitArg, RateArg};
use super::{EXIT_HALTED, EXIT_LOCKED, summary, usage};
use crate::progress::{self, Progress, ProgressArgs, RunFigures, Shared, write_stats};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LimiterArg {
    TokenBucket,
    SlidingWindow,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum AuthArg {
    /// `Authorization: Bearer KEY` (OpenAI and most compatible servers).
    Bearer,
    /// `api-key: KEY` (Azure OpenAI).
    ApiKey,
}

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

    /// The API's base URL.
    #[arg(
        long,
        env = "OPENAI_BASE_URL",
        default_value = "https://api.openai.com/v1"
    )]
    pub base_url: String,
    /// Environment variable that holds the API key.
    #[arg(long, default_value = "OPENAI_API_KEY", value_name = "NAME")]
    api_key_env: String,
    /// Send no key: for a local server that needs none. Without it, a missing key is an
    /// error before anything is sent.
    #[arg(long)]
    no_auth: bool,
    /// How the key is sent.
    #[arg(long, value_enum, default_value_t = AuthArg::Bearer)]
    auth: AuthArg,
    /// Extra header for every request, as 'Name: value' (repeatable). Values of credential
    /// headers (Authorization, anything with key, token or secret in its name) are
    /// redacted like the key.
    #[arg(long = "header", value_name = "NAME: VALUE")]
    headers: Vec<String>,

    /// Requests in flight at most: a number, or `auto` (`auto:N` for a ceiling; 512 by
    /// default) to follow latency, for servers that queue instead of refusing.
    #[arg(long, default_value = "64", value_parser = values::parse_concurrency)]
    pub concurrency: ConcurrencyArg,
    /// Requests per minute to keep within: a number, `auto` to find it, or `auto:N` to
    /// find it below N.
    #[arg(long, value_parser = values::parse_rate)]
    pub rpm: Option<RateArg>,
    /// Tokens per minute (prompt plus max_tokens times n): a number, `auto` or `auto:N`.
    #[arg(long, value_parser = values::parse_rate)]
    pub tpm: Option<RateArg>,
    /// Limits for one model, admitted apart from the rest (repeatable):
    /// `MODEL=rpm:N,tpm:M`, each `N`/`M` a number or `auto`.
    #[arg(long = "limit", value_name = "MODEL=rpm:N,tpm:M", value_parser = values::parse_model_limit)]
    model_limits: Vec<ModelLimitArg>,
    /// Let a waiting request gain one priority level for every N requests that arrive
    /// after it (keeps low priority from starving).
    #[arg(long, value_name = "N")]
    priority_aging: Option<u64>,
    /// Admission algorithm: a token bucket with a small burst (OpenAI), or shares of 1 s,
    /// 10 s and 60 s windows with no burst (Azure).
    #[arg(long, value_enum, default_value_t = LimiterArg::TokenBucket)]
    limiter: LimiterArg,
    /// Seconds of the per-minute budgets that may be spent at once [default: 0.5, and the
    /// opening burst may use what the server's first answer states remains; given
    /// explicitly, this bound holds from the first request].
    #[arg(long, value_parser = values::seconds)]
    burst_secs: Option<Duration>,

    /// Attempts per request, the first included, for errors worth retrying (5xx,
    /// timeouts, broken connections). Rate-limit refusals (429) do not count: see
    /// --max-rate-limited-wait.
    #[arg(long, default_value_t = NonZeroU32::new(8).expect("8 > 0"))]
    max_attempts: NonZeroU32,
    /// Seconds a request may keep being refused as rate-limited (429) before it is
    /// written off as rate_limited.
    #[arg(long, default_value = "900", value_parser = values::positive_seconds)]
    max_rate_limited_wait: Duration,
    /// First retry waits up to this many seconds (doubling each time, with full jitter).
    #[arg(long, default_value = "0.5", value_parser = values::positive_seconds)]
    backoff_base: Duration,
    /// No retry waits longer than this many seconds of backoff.
    #[arg(long, default_value = "60", value_parser = values::positive_seconds)]
    backoff_max: Duration,
    /// A server asking to wait longer than this many seconds fails the request instead.
    #[arg(long, default_value = "120", value_parser = values::seconds)]
    max_retry_after: Duration,
    /// Seconds allowed to connect.
    #[arg(long, default_value = "10", value_parser = values::positive_seconds)]
    connect_timeout: Duration,
    /// Seconds allowed for a whole request.
    #[arg(long, default_value = "600", value_parser = values::positive_seconds)]
    timeout: Duration,
    /// The largest response body read (a number of bytes, or 256MiB, 64KiB...); a larger
    /// answer fails its request as response_too_large without being held in memory.
    #[arg(long, default_value = "256MiB", value_parser = values::bytes)]
    max_response_bytes: u64,
    /// Seconds every attempt may fail to connect, before any answer, until the run stops
    /// as unreachable (exit 4; nothing is lost, run again to resume).
    #[arg(long, default_value = "30", value_parser = values::positive_seconds)]
    unreachable_timeout: Duration,
    /// Seed for retry jitter (reproducible runs).
    #[arg(long)]
    seed: Option<u64>,

    /// Discard the results and state of an earlier run to the same output and start over.
    #[arg(long)]
    restart: bool,
    /// Take the failures of an earlier run out of the errors file and read (and send)
    /// their lines again.
    #[arg(long)]
    retry_failed: bool,
    /// When results are forced to disk: `always`, every N seconds (`1s`, the default,
    /// `250ms`), or `never` (the OS decides; a crash of sluice still loses nothing written).
    #[arg(long, default_value = "1s", value_parser = values::parse_sync)]
    sync: SyncPolicy,
    /// Seconds to let requests in flight finish after Ctrl-C or SIGTERM.
    #[arg(long, default_value = "30", value_parser = values::seconds)]
    drain_timeout: Duration,
    #[command(flatten)]
    pub progress: ProgressArgs,
    /// Threads that send and receive. One sends tens of thousands of requests a second,
    /// far above any provider's limits, and costs the least CPU a request; more help only
    /// against a local server with large answers or with TLS at very high rates.
    #[arg(long, default_value = "1", value_parser = values::threads)]
    pub threads: NonZeroUsize,
}

impl RunArgs {
    /// The client these flags describe; `in_flight` follows the tags of requests sent and
    /// not yet finished.
    pub fn client(
        &self,
        in_flight: Arc<Mutex<std::collections::BTreeSet<u64>>>,
        display: Arc<Shared>,
    ) -> anyhow::Result<Client> {
        let mut builder = Client::builder()
            .observer(Arc::new(move |event: &Event<'_>| match event {
                Event::Sent { tag, .. } => {
                    in_flight
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(*tag);
                }
                Event::Finished { tag, .. } => {
                    in_flight
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(tag);
                }
                other => display.on_event(other),
            }))
            .base_url(&self.base_url)
            .limits(Limits {
                rpm: self.rpm.and_then(|r| r.limit),
                tpm: self.tpm.and_then(|r| r.limit),
                burst: self.burst(),
                opening_burst: self.burst_secs.is_none(),
                rpm_auto: self.rpm.is_some_and(|r| r.auto),
                tpm_auto: self.tpm.is_some_and(|r| r.auto),
                algorithm: self.algorithm(),
            })
            .retry(RetryPolicy {
                max_attempts: self.max_attempts,
                backoff: self.backoff()?,
                max_retry_after: self.max_retry_after,
                max_rate_limited_wait: self.max_rate_limited_wait,
                ..RetryPolicy::default()
            })
            .connect_timeout(self.connect_timeout)
            .timeout(self.timeout)
            .max_response_bytes(self.max_response_bytes)
            .stop_early(StopEarly::default().unreachable_after(self.unreachable_timeout))
            .auth_style(match self.auth {
                AuthArg::Bearer => AuthStyle::Bearer,
                AuthArg::ApiKey => AuthStyle::ApiKeyHeader,
            });
        let mut credential_header = false;
        for header in &self.headers {
            let Some((name, value)) = header.split_once(':') else {
                usage!("--header `{header}` must look like 'Name: value'");
            };
            credential_header |= is_secret_header(name);
            builder = builder.header(name.trim(), value.trim());
        }
        match std::env::var(&self.api_key_env).map(|k| k.trim().to_owned()) {
            Ok(key) if !key.is_empty() && !self.no_auth => {
                builder = builder.api_key(ApiKey::new(key));
            }
            _ if self.no_auth || credential_header => {}
            _ => usage!(
                "no API key: set {} (or name another variable with --api-key-env), or pass --no-auth \
                 for a server that needs none",
                self.api_key_env
            ),
        }
        if let Some(seed) = self.seed {
            builder = builder.seed(seed);
        }
        if let Some(n) = self.priority_aging {
            builder = builder.priority_aging(n);
        }
        builder = if self.concurrency.auto {
            builder.concurrency_auto(self.concurrency.max)
        } else {
            builder.concurrency(self.concurrency.max)
        };
        for m in &self.model_limits {
            builder = builder.model_limits(
                m.model.clone(),
                Limits {
                    rpm: m.rpm.and_then(|r| r.limit),
                    tpm: m.tpm.and_then(|r| r.limit),
                    rpm_auto: m.rpm.is_some_and(|r| r.auto),
                    tpm_auto: m.tpm.is_some_and(|r| r.auto),
                    burst: self.burst(),
                    opening_burst: self.burst_secs.is_none(),
                    algorithm: self.algorithm(),
                },
            );
        }
        match builder.build() {
            Ok(client) => Ok(client),
            Err(e) => usage!("{e}"),
        }
    }

    /// `--burst-secs`, or half a second.
    fn burst(&self) -> Duration {
        self.burst_secs.unwrap_or(Duration::from_millis(500))
    }

    fn backoff(&self) -> anyhow::Result<Backoff> {
        match Backoff::new(self.backoff_base, self.backoff_max) {
            Ok(b) => Ok(b),
            Err(_) => usage!(
                "--backoff-max ({} s) must be at least --backoff-base ({} s)",
                self.backoff_max.as_secs_f64(),
                self.backoff_base.as_secs_f64()
            ),
        }
    }

    fn algorithm(&self) -> Algorithm {
        match self.limiter {
            LimiterArg::TokenBucket => Algorithm::TokenBucket,
            LimiterArg::SlidingWindow => Algorithm::SlidingWindow,
        }
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

/// Runs `args` to the end (or to a signal, or to a halt) and prints the summary.
pub async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let mut signals = Signals::install()?;
    // Ordered, so the checkpoint gets the lines sorted; no hashing on the hot path.
    let in_flight = Arc::new(Mutex::new(std::collections::BTreeSet::new()));
    let mut progress = Progress::new();
    let client = args.client(in_flight.clone(), progress.shared.clone())?;
    let mut options = args.input.options()?;
    let input_path = &args.input.input;
    let identity = InputIdentity::of(input_path)
        .with_context(|| format!("cannot open {}", input_path.display()))?;
    let open = OpenOptions {
        restart: args.restart,
        retry_failed: args.retry_failed,
        sync: args.sync,
    };
    let (journal, mut recovered) = match Journal::open(args.paths(), identity, open) {
        Ok(x) => x,
        Err(JournalError::Guard(e @ GuardError::Locked { .. })) => {
            eprintln!("sluice: {e}");
            return Ok(ExitCode::from(EXIT_LOCKED));
        }
        Err(
            e @ (JournalError::InputChanged { .. }
            | JournalError::OutputWithoutState { .. }
            | JournalError::Guard(_)),
        ) => usage!("{e}"),
        Err(e) => return Err(e.into()),
    };
    if recovered.resumed && !args.progress.quiet {
        report_resume(&args, &recovered);
    }
    let recovered_lines = recovered.done.len();
    progress.shared.set_resumed(recovered_lines);
    if input_path.as_os_str() != "-" {
        let (path, shared) = (input_path.display().to_string(), progress.shared.clone());
        tokio::task::spawn_blocking(move || {
            if let Some(lines) = count_lines(&path) {
                shared.set_total(lines);
            }
        });
    }
    let resent = recovered.previously_in_flight.len() as u64;
    let earlier_failures = recovered.failed;
    options.skip = std::mem::take(&mut recovered.done);
    let input = input::open(input_path, options)
        .await
        .with_context(|| format!("cannot open {}", input_path.display()))?;
    let input_name = if input_path.as_os_str() == "-" {
        "<stdin>".to_owned()
    } else {
        input_path.display().to_string()
    };
    progress.start(&args.progress, client.clone()).await?;
    let outcome = execute(
        &client,
        &input_name,
        input,
        journal,
        recovered.ids,
        &in_flight,
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
    let paths = args.paths();
    let figures = RunFigures {
        total_lines: display.total(),
        resumed: recovered_lines,
        invalid_lines: outcome.invalid_lines,
        attempts_histogram: outcome.attempts.clone(),
        wall: outcome.wall,
    };
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
    if let Some(halt) = &outcome.halt {
        eprintln!("sluice: stopped early: {}", halt_advice(halt, &args));
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
fn halt_advice(halt: &Halt, args: &RunArgs) -> String {
    let said = &halt.error.message;
    match halt.reason {
        HaltReason::Unauthorized => format!(
            "the server refused the API key ({said}); check {} (or --api-key-env, --auth, --no-auth)",
            args.api_key_env
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
            "the URL does not exist ({said}); check --base-url ({}), which usually ends in /v1",
            args.base_url
        ),
        HaltReason::Redirect => said.clone(),
        HaltReason::Unreachable => format!(
            "nothing answered at {} for {} s ({said}); check --base-url and that the server is running",
            args.base_url,
            args.unreachable_timeout.as_secs_f64()
        ),
        _ => said.clone(),
    }
}
