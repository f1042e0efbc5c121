//! `sluice run`: send a whole file of requests and write every result.

use std::num::{NonZeroU32, NonZeroU64, NonZeroUsize};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use futures::StreamExt;
use sluice::input::{self, Format, InputItem, InputOptions, LineError, PromptOptions};
use sluice::{ApiKey, AuthStyle, Backoff, Client, Limits, RetryPolicy};
use tokio::sync::mpsc;

use super::sink::{Sink, default_errors_path};
use super::summary;
use super::{EXIT_FAILURES, EXIT_OK, usage};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FormatArg {
    Auto,
    Batch,
    Prompts,
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

    /// Requests in flight at most.
    #[arg(long, default_value_t = NonZeroUsize::new(64).expect("64 > 0"))]
    pub concurrency: NonZeroUsize,
    /// Requests per minute to keep within.
    #[arg(long)]
    pub rpm: Option<NonZeroU64>,
    /// Tokens per minute to keep within (prompt plus max_tokens times n).
    #[arg(long)]
    pub tpm: Option<NonZeroU64>,
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
}

fn secs(value: f64, flag: &str) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(value)
        .with_context(|| format!("{flag} must be a non-negative number of seconds"))
}

impl RunArgs {
    /// The client these flags describe.
    pub fn client(&self) -> anyhow::Result<Client> {
        let mut builder = Client::builder()
            .base_url(&self.base_url)
            .concurrency(self.concurrency)
            .limits(Limits {
                rpm: self.rpm,
                tpm: self.tpm,
                burst: secs(self.burst_secs, "--burst-secs")?,
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
        })
    }

    /// The errors file.
    pub fn errors_path(&self) -> PathBuf {
        self.errors
            .clone()
            .unwrap_or_else(|| default_errors_path(&self.output))
    }
}

/// What the input stream tells the writer besides requests.
enum Note {
    Invalid(LineError),
    ReadFailed(std::io::Error),
}

/// Runs `args` to the end and prints the summary.
pub async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let client = args.client()?;
    let options = args.input_options()?;
    let input = input::open(&args.input, options)
        .await
        .with_context(|| format!("cannot open {}", args.input.display()))?;
    let mut sink = Sink::create(&args.output, &args.errors_path())?;
    let report = execute(&client, input, &mut sink).await?;
    eprint!(
        "{}",
        summary::render(&client.stats(), report.invalid_lines, report.wall)
    );
    let (out, err) = sink.paths();
    eprintln!(
        "  output       {}\n  errors       {}",
        out.display(),
        err.display()
    );
    Ok(ExitCode::from(report.exit_code()))
}

/// What a run came to.
pub struct Report {
    /// Input lines that could not be sent.
    pub invalid_lines: u64,
    /// Requests that failed for good.
    pub failed: u64,
    /// Time from start to the last result.
    pub wall: Duration,
}

impl Report {
    /// 0 when everything succeeded, [`EXIT_FAILURES`] otherwise.
    pub fn exit_code(&self) -> u8 {
        if self.invalid_lines + self.failed == 0 {
            EXIT_OK
        } else {
            EXIT_FAILURES
        }
    }
}

/// Sends everything `input` holds through `client`, writing each result to `sink`.
pub async fn execute(
    client: &Client,
    input: input::InputStream,
    sink: &mut Sink,
) -> anyhow::Result<Report> {
    let started = Instant::now();
    let (notes_tx, mut notes) = mpsc::unbounded_channel();
    let requests = input.filter_map(move |item| {
        let request = match item {
            InputItem::Request(_, request) => Some(request),
            InputItem::Invalid(e) => {
                let _ = notes_tx.send(Note::Invalid(e));
                None
            }
            InputItem::Failed(e) => {
                let _ = notes_tx.send(Note::ReadFailed(e));
                None
            }
        };
        std::future::ready(request)
    });
    let mut results = client.run(Box::pin(requests));
    let mut invalid_lines = 0;
    let mut failed = 0;
    let mut read_error = None;
    let mut on_note = |note: Note, sink: &mut Sink| -> anyhow::Result<()> {
        match note {
            Note::Invalid(e) => {
                invalid_lines += 1;
                sink.invalid_line(&e)
            }
            Note::ReadFailed(e) => {
                read_error = Some(e);
                Ok(())
            }
        }
    };
    loop {
        tokio::select! {
            biased;
            Some(note) = notes.recv() => on_note(note, sink)?,
            result = results.next() => match result {
                Some(result) => {
                    if result.outcome.is_err() {
                        failed += 1;
                    }
                    sink.result(&result)?;
                }
                None => break,
            },
        }
    }
    while let Ok(note) = notes.try_recv() {
        on_note(note, sink)?;
    }
    sink.flush()?;
    if let Some(e) = read_error {
        bail!("reading the input failed: {e}; the results so far are written");
    }
    Ok(Report {
        invalid_lines,
        failed,
        wall: started.elapsed(),
    })
}
