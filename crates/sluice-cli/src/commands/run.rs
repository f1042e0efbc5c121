//! `sluice run`: send a whole file of requests and write every result.

use std::num::{NonZeroU32, NonZeroU64, NonZeroUsize};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use sluice::input::{self, Format, InputOptions, PromptOptions};
use sluice::journal::{
    InputIdentity, Journal, JournalError, JournalPaths, OpenOptions, SyncPolicy,
};
use sluice::limits::Algorithm;
use sluice::{ApiKey, AuthStyle, Backoff, Client, Event, Limits, RetryPolicy};

use super::execute::execute;
use super::signals::Signals;
use super::summary;
use super::usage;
use std::process::ExitCode;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FormatArg {
    Auto,
    Batch,
    Prompts,
}

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
    /// Requests: a file of OpenAI Batch API lines or of plain prompts; `-` for stdin.
    pub input: PathBuf,
    /// Where successful results go (OpenAI Batch output lines).
    #[arg(short, long)]
    pub output: PathBuf,
    /// Where permanent failures go [default: OUTPUT's name with .errors.jsonl].
    #[arg(long)]
    pub errors: Option<PathBuf>,
    /// Input format.
    #[arg(long, value_enum, default_value_t = FormatArg::Auto)]
    format: FormatArg,
    /// Model for plain prompts (required for the prompts format).
    #[arg(long)]
    model: Option<String>,
    /// System message before each plain prompt.
    #[arg(long)]
    system: Option<String>,
    /// max_tokens for plain prompts.
    #[arg(long)]
    max_tokens: Option<u64>,
    /// temperature for plain prompts.
    #[arg(long)]
    temperature: Option<f64>,

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
    /// How the key is sent.
    #[arg(long, value_enum, default_value_t = AuthArg::Bearer)]
    auth: AuthArg,
    /// Extra header for every request, as 'Name: value' (repeatable).
    #[arg(long = "header", value_name = "NAME: VALUE")]
    headers: Vec<String>,

    /// Requests in flight at most: a number, or `auto` (`auto:N` for a ceiling; 512 by
    /// default) to follow latency, for servers that queue instead of refusing.
    #[arg(long, default_value = "64", value_parser = parse_concurrency)]
    pub concurrency: ConcurrencyArg,
    /// Requests per minute to keep within: a number, `auto` to find it, or `auto:N` to
    /// find it below N.
    #[arg(long, value_parser = parse_rate)]
    pub rpm: Option<RateArg>,
    /// Tokens per minute (prompt plus max_tokens times n): a number, `auto` or `auto:N`.
    #[arg(long, value_parser = parse_rate)]
    pub tpm: Option<RateArg>,
    /// Limits for one model, admitted apart from the rest (repeatable):
    /// `MODEL=rpm:N,tpm:M`, each `N`/`M` a number or `auto`.
    #[arg(long = "limit", value_name = "MODEL=rpm:N,tpm:M", value_parser = parse_model_limit)]
    model_limits: Vec<ModelLimitArg>,
    /// Let a waiting request gain one priority level for every N requests that arrive
    /// after it (keeps low priority from starving).
    #[arg(long, value_name = "N")]
    priority_aging: Option<u64>,
    /// Admission algorithm: a token bucket with a small burst (OpenAI), or shares of 1 s,
    /// 10 s and 60 s windows with no burst (Azure).
    #[arg(long, value_enum, default_value_t = LimiterArg::TokenBucket)]
    limiter: LimiterArg,
    /// Seconds of the per-minute budgets that may be spent at once.
    #[arg(long, default_value_t = 0.5)]
    burst_secs: f64,

    /// Attempts per request, the first included.
    #[arg(long, default_value_t = NonZeroU32::new(8).expect("8 > 0"))]
    max_attempts: NonZeroU32,
    /// First retry waits up to this many seconds (doubling each time, with full jitter).
    #[arg(long, default_value_t = 0.5)]
    backoff_base: f64,
    /// No retry waits longer than this many seconds of backoff.
    #[arg(long, default_value_t = 60.0)]
    backoff_max: f64,
    /// A server asking to wait longer than this many seconds fails the request instead.
    #[arg(long, default_value_t = 120.0)]
    max_retry_after: f64,
    /// Seconds allowed to connect.
    #[arg(long, default_value_t = 10.0)]
    connect_timeout: f64,
    /// Seconds allowed for a whole request.
    #[arg(long, default_value_t = 600.0)]
    timeout: f64,
    /// Longer input lines are errors.
    #[arg(long, default_value_t = 16 * 1024 * 1024)]
    max_line_bytes: usize,
    /// Seed for retry jitter (reproducible runs).
    #[arg(long)]
    seed: Option<u64>,

    /// Discard the results and state of an earlier run to the same output and start over.
    #[arg(long)]
    restart: bool,
    /// Send again the requests that failed for good in an earlier run.
    #[arg(long)]
    retry_failed: bool,
    /// When results are forced to disk: `always`, every N seconds (`1s`, the default,
    /// `250ms`), or `never` (the OS decides; a crash of sluice still loses nothing written).
    #[arg(long, default_value = "1s", value_parser = parse_sync)]
    sync: SyncPolicy,
    /// Seconds to let requests in flight finish after Ctrl-C or SIGTERM.
    #[arg(long, default_value_t = 30.0)]
    drain_timeout: f64,
    /// Threads that send and receive. One sends tens of thousands of requests a second,
    /// far above any provider's limits, and costs the least CPU a request; more help only
    /// against a local server with large answers or with TLS at very high rates.
    #[arg(long, default_value_t = NonZeroUsize::new(1).expect("1 > 0"))]
    pub threads: NonZeroUsize,
}

/// `--concurrency N | auto | auto:N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConcurrencyArg {
    /// The limit, or the ceiling of the search.
    pub max: NonZeroUsize,
    /// Follow latency.
    pub auto: bool,
}

fn parse_concurrency(s: &str) -> Result<ConcurrencyArg, String> {
    let number = |n: &str| {
        n.parse::<NonZeroUsize>()
            .map_err(|_| format!("`{s}`: expected a positive number, auto, or auto:N"))
    };
    match s.strip_prefix("auto") {
        Some("") => Ok(ConcurrencyArg {
            max: NonZeroUsize::new(512).expect("512 > 0"),
            auto: true,
        }),
        Some(rest) => match rest.strip_prefix(':') {
            Some(n) => Ok(ConcurrencyArg {
                max: number(n)?,
                auto: true,
            }),
            None => Err(format!(
                "`{s}`: expected a positive number, auto, or auto:N"
            )),
        },
        None => Ok(ConcurrencyArg {
            max: number(s)?,
            auto: false,
        }),
    }
}

/// `--limit MODEL=rpm:N,tpm:M`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelLimitArg {
    model: String,
    rpm: Option<RateArg>,
    tpm: Option<RateArg>,
}

fn parse_model_limit(s: &str) -> Result<ModelLimitArg, String> {
    let (model, spec) = s
        .split_once('=')
        .filter(|(m, _)| !m.is_empty())
        .ok_or_else(|| format!("`{s}`: expected MODEL=rpm:N,tpm:M"))?;
    let mut limit = ModelLimitArg {
        model: model.to_owned(),
        rpm: None,
        tpm: None,
    };
    for part in spec.split(',') {
        match part.split_once(':') {
            Some(("rpm", v)) => limit.rpm = Some(parse_rate(v)?),
            Some(("tpm", v)) => limit.tpm = Some(parse_rate(v)?),
            _ => return Err(format!("`{part}` in `{s}`: expected rpm:N or tpm:N")),
        }
    }
    Ok(limit)
}

/// `--rpm`/`--tpm`: a fixed limit, `auto`, or `auto:CEILING`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateArg {
    /// The limit, or the ceiling of the search.
    pub limit: Option<NonZeroU64>,
    /// Search for the rate.
    pub auto: bool,
}

fn parse_rate(s: &str) -> Result<RateArg, String> {
    let number = |n: &str| {
        n.parse::<NonZeroU64>()
            .map_err(|_| format!("`{s}`: expected a positive number, auto, or auto:N"))
    };
    match s.strip_prefix("auto") {
        Some("") => Ok(RateArg {
            limit: None,
            auto: true,
        }),
        Some(rest) => match rest.strip_prefix(':') {
            Some(n) => Ok(RateArg {
                limit: Some(number(n)?),
                auto: true,
            }),
            None => Err(format!(
                "`{s}`: expected a positive number, auto, or auto:N"
            )),
        },
        None => Ok(RateArg {
            limit: Some(number(s)?),
            auto: false,
        }),
    }
}

fn parse_sync(s: &str) -> Result<SyncPolicy, String> {
    match s {
        "always" => Ok(SyncPolicy::Always),
        "never" => Ok(SyncPolicy::Never),
        other => {
            let (number, scale) = if let Some(ms) = other.strip_suffix("ms") {
                (ms, 0.001)
            } else if let Some(s) = other.strip_suffix('s') {
                (s, 1.0)
            } else {
                (other, 1.0)
            };
            number
                .parse::<f64>()
                .ok()
                .and_then(|n| Duration::try_from_secs_f64(n * scale).ok())
                .map(SyncPolicy::Every)
                .ok_or_else(|| {
                    format!("`{s}`: expected always, never, or an interval such as 1s or 250ms")
                })
        }
    }
}

fn secs(value: f64, flag: &str) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(value)
        .with_context(|| format!("{flag} must be a non-negative number of seconds"))
}

impl RunArgs {
    /// The client these flags describe; `in_flight` follows the tags of requests sent and
    /// not yet finished.
    pub fn client(
        &self,
        in_flight: Arc<Mutex<std::collections::BTreeSet<u64>>>,
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
                _ => {}
            }))
            .base_url(&self.base_url)
            .limits(Limits {
                rpm: self.rpm.and_then(|r| r.limit),
                tpm: self.tpm.and_then(|r| r.limit),
                burst: secs(self.burst_secs, "--burst-secs")?,
                rpm_auto: self.rpm.is_some_and(|r| r.auto),
                tpm_auto: self.tpm.is_some_and(|r| r.auto),
                algorithm: self.algorithm(),
            })
            .retry(RetryPolicy {
                max_attempts: self.max_attempts,
                backoff: Backoff::new(
                    secs(self.backoff_base, "--backoff-base")?,
                    secs(self.backoff_max, "--backoff-max")?,
                )?,
                max_retry_after: secs(self.max_retry_after, "--max-retry-after")?,
                ..RetryPolicy::default()
            })
            .connect_timeout(secs(self.connect_timeout, "--connect-timeout")?)
            .timeout(secs(self.timeout, "--timeout")?)
            .auth_style(match self.auth {
                AuthArg::Bearer => AuthStyle::Bearer,
                AuthArg::ApiKey => AuthStyle::ApiKeyHeader,
            });
        if let Ok(key) = std::env::var(&self.api_key_env)
            && !key.is_empty()
        {
            builder = builder.api_key(ApiKey::new(key));
        }
        for header in &self.headers {
            let Some((name, value)) = header.split_once(':') else {
                usage!("--header `{header}` must look like 'Name: value'");
            };
            builder = builder.header(name.trim(), value.trim());
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
                    burst: secs(self.burst_secs, "--burst-secs")?,
                    algorithm: self.algorithm(),
                },
            );
        }
        match builder.build() {
            Ok(client) => Ok(client),
            Err(e) => usage!("{e}"),
        }
    }

    /// How to read the input.
    pub fn input_options(&self) -> anyhow::Result<InputOptions> {
        let format = match self.format {
            FormatArg::Auto => Format::Auto,
            FormatArg::Batch => Format::Batch,
            FormatArg::Prompts => Format::Prompts,
        };
        if matches!(format, Format::Prompts) && self.model.is_none() {
            usage!("--format prompts needs --model");
        }
        Ok(InputOptions {
            format,
            prompts: self.model.as_ref().map(|model| PromptOptions {
                model: model.clone(),
                system: self.system.clone(),
                max_tokens: self.max_tokens,
                temperature: self.temperature,
            }),
            max_line_bytes: self.max_line_bytes,
            skip: Default::default(),
        })
    }

    fn algorithm(&self) -> Algorithm {
        match self.limiter {
            LimiterArg::TokenBucket => Algorithm::TokenBucket,
            LimiterArg::SlidingWindow => Algorithm::SlidingWindow,
        }
    }

    /// The files of this run.
    pub fn paths(&self) -> JournalPaths {
        JournalPaths::for_output(&self.output, self.errors.as_deref())
    }
}

/// Runs `args` to the end (or to a signal) and prints the summary.
pub async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let mut signals = Signals::install()?;
    // Ordered, so the checkpoint gets the lines sorted; no hashing on the hot path.
    let in_flight = Arc::new(Mutex::new(std::collections::BTreeSet::new()));
    let client = args.client(in_flight.clone())?;
    let mut options = args.input_options()?;
    let identity = InputIdentity::of(&args.input)
        .with_context(|| format!("cannot open {}", args.input.display()))?;
    let open = OpenOptions {
        restart: args.restart,
        retry_failed: args.retry_failed,
        sync: args.sync,
    };
    let (journal, mut recovered) = match Journal::open(args.paths(), identity, open) {
        Ok(x) => x,
        Err(e @ (JournalError::InputChanged { .. } | JournalError::OutputWithoutState { .. })) => {
            usage!("{e}")
        }
        Err(e) => return Err(e.into()),
    };
    if recovered.resumed {
        let mut extra = String::new();
        if recovered.retrying > 0 {
            extra.push_str(&format!("; sending {} failures again", recovered.retrying));
        }
        if recovered.repaired_bytes > 0 {
            extra.push_str(&format!(
                "; cut {} bytes of a torn last record",
                recovered.repaired_bytes
            ));
        }
        eprintln!(
            "sluice: resuming {}: {} lines already done ({} ok, {} failed){extra}",
            args.output.display(),
            recovered.done.len(),
            recovered.ok,
            recovered.failed,
        );
    }
    let resent = recovered.previously_in_flight.len() as u64;
    let earlier_failures = recovered.failed;
    options.skip = std::mem::take(&mut recovered.done);
    let input = input::open(&args.input, options)
        .await
        .with_context(|| format!("cannot open {}", args.input.display()))?;
    let drain = secs(args.drain_timeout, "--drain-timeout")?;
    let outcome = execute(
        &client,
        input,
        journal,
        recovered.ids,
        &in_flight,
        &mut signals,
        drain,
    )
    .await?;
    let mut text = summary::render(&client.stats(), outcome.invalid_lines, outcome.wall);
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
    eprint!("{text}");
    let paths = args.paths();
    eprintln!(
        "  output       {}\n  errors       {}",
        paths.output.display(),
        paths.errors.display()
    );
    if let Some(signal) = outcome.interrupted {
        eprintln!(
            "sluice: stopped by {signal}; the results so far are written. To resume, run:\n  {}",
            resume_command()
        );
    }
    Ok(ExitCode::from(outcome.exit_code(earlier_failures)))
}

/// This process's command line, shell-quoted, without the flags that only make sense once.
fn resume_command() -> String {
    std::env::args()
        .filter(|a| a != "--restart" && a != "--retry-failed")
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@+".contains(c))
            {
                a
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
