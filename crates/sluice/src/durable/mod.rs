//! [`DurableRun`]: a file of requests run to a file of results with exactly one record per
//! input line, however often the run is stopped, crashes or is started again. It is the
//! loop the CLI's `sluice run` and `demo` use, and a library user gets the same
//! guarantees:
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use sluice::durable::{DurableOptions, DurableRun, RunControl};
//!
//! let run = DurableRun::open(DurableOptions::new("requests.jsonl", "results.jsonl"))?;
//! println!("{} lines done by earlier runs", run.recovered().done.len());
//! let client = sluice::Client::from_env()?;
//! let report = run.run(&client, RunControl::default()).await?;
//! println!("{} failed, {} invalid lines", report.failed, report.invalid_lines);
//! # Ok(()) }
//! ```
//!
//! Opening recovers what earlier runs wrote (see [`crate::journal`]) and starts reading
//! the input beside it; running feeds the input to the engine, turns unusable and
//! duplicate lines into error records, writes every result, and checkpoints the requests
//! in flight, so a crash costs at most those being sent again.

mod drive;
mod messages;
mod suspects;

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::Client;
use crate::input::{self, InputOptions, Opening};
use crate::journal::{
    InputIdentity, Journal, JournalError, JournalPaths, OpenOptions, Recovered, SyncPolicy,
};
use suspects::Reread;

pub use drive::Report;
pub use messages::Messages;

/// What a durable run reads and writes, and how it treats earlier results.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DurableOptions {
    /// The requests (JSONL; `-` for standard input, which cannot be resumed).
    pub input: PathBuf,
    /// The results, the errors file and the run's state beside them.
    pub paths: JournalPaths,
    /// How the input is read.
    pub input_options: InputOptions,
    /// Start over, discarding earlier results.
    pub restart: bool,
    /// Send the failed lines of earlier runs again.
    pub retry_failed: bool,
    /// When the files are forced to disk.
    pub sync: SyncPolicy,
    /// The shape of the records: OpenAI's Batch output (default) or Anthropic's batch
    /// results. Keep it the same when resuming, so one file holds one shape.
    pub format: crate::output::RecordFormat,
}

impl DurableOptions {
    /// Reads `input`, writes `output` (and `output` with `.errors.jsonl`, `.state.json`
    /// beside it), resuming what is there.
    pub fn new(input: impl AsRef<Path>, output: impl AsRef<Path>) -> Self {
        DurableOptions {
            input: input.as_ref().to_owned(),
            paths: JournalPaths::for_output(output.as_ref(), None),
            input_options: InputOptions::default(),
            restart: false,
            retry_failed: false,
            sync: SyncPolicy::default(),
            format: crate::output::RecordFormat::default(),
        }
    }
}

/// How a running [`DurableRun`] is stopped from outside.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RunControl {
    /// Cancel to stop gracefully: nothing new is sent, requests in flight finish and are
    /// written (for at most `drain_timeout`), the rest stay pending for the next run.
    pub stop: CancellationToken,
    /// Cancel to stop at once, abandoning what is in flight (a second Ctrl-C); the
    /// checkpoint records it, so the next run sends it again.
    pub abort: CancellationToken,
    /// How long requests in flight may take to finish after `stop`.
    pub drain_timeout: Duration,
}

impl Default for RunControl {
    fn default() -> Self {
        RunControl {
            stop: CancellationToken::new(),
            abort: CancellationToken::new(),
            drain_timeout: Duration::from_secs(30),
        }
    }
}

/// Why a durable run could not start or go on. Nothing written before is lost.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DurableError {
    /// The input cannot be opened or read.
    #[error("cannot open {path}: {source}")]
    Input {
        /// The input.
        path: String,
        /// What the system said.
        source: std::io::Error,
    },
    /// Reading the input failed part way; the results so far are written, and running
    /// again resumes.
    #[error(
        "reading {path} failed: {source}; the results so far are written, and running again resumes"
    )]
    InputRead {
        /// The input.
        path: String,
        /// What the system said.
        source: std::io::Error,
    },
    /// The results files cannot be opened or are not this input's.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// A result could not be written.
    #[error("cannot write {output} or {errors}: {source}")]
    Write {
        /// The results file.
        output: String,
        /// The errors file.
        errors: String,
        /// What the system said.
        source: std::io::Error,
    },
}

/// A durable run, opened: earlier results recovered, the input being read.
pub struct DurableRun {
    input_name: String,
    journal: Journal,
    recovered: Recovered,
    opening: Opening,
    /// Where the input can be read again (not standard input).
    reread: Option<Reread>,
}

impl DurableRun {
    /// Opens the files: takes the output's lock, recovers what earlier runs wrote (the
    /// input must be the same one), and starts the input's first pass beside it.
    pub fn open(options: DurableOptions) -> Result<DurableRun, DurableError> {
        let path = &options.input;
        let input_error = |source| DurableError::Input {
            path: path.display().to_string(),
            source,
        };
        let identity = InputIdentity::of(path).map_err(input_error)?;
        let reread = (path.as_os_str() != "-").then(|| Reread {
            path: path.clone(),
            options: options.input_options.clone(),
        });
        let opening = input::start(path, options.input_options).map_err(input_error)?;
        let open = OpenOptions {
            restart: options.restart,
            retry_failed: options.retry_failed,
            sync: options.sync,
            format: options.format,
        };
        let (journal, recovered) = Journal::open(options.paths, identity, open)?;
        let input_name = if path.as_os_str() == "-" {
            "<stdin>".to_owned()
        } else {
            path.display().to_string()
        };
        Ok(DurableRun {
            input_name,
            journal,
            recovered,
            opening,
            reread,
        })
    }

    /// What earlier runs left: lines done, failures, what they spent.
    pub fn recovered(&self) -> &Recovered {
        &self.recovered
    }

    /// The files written.
    pub fn paths(&self) -> &JournalPaths {
        self.journal.paths()
    }

    /// Runs to the end of the input, or until `control` stops it, or the batch halts or
    /// meets its spend cap; see [`Report`] for which.
    pub async fn run(self, client: &Client, control: RunControl) -> Result<Report, DurableError> {
        let DurableRun {
            input_name,
            journal,
            recovered,
            opening,
            reread,
        } = self;
        let Recovered { done, ids, .. } = recovered;
        let input = opening
            .finish(done)
            .await
            .map_err(|source| DurableError::Input {
                path: input_name.clone(),
                source,
            })?;
        drive::drive(client, &input_name, input, journal, ids, reread, control).await
    }
}
