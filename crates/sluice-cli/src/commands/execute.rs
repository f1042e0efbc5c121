//! The loop between the engine and the files: feeds the input to the engine (turning
//! unusable and duplicate lines into error records), writes every result to the journal,
//! checkpoints, and handles stop signals.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use futures::{FutureExt, StreamExt};
use sluice::input::{InputItem, InputStream, LineError};
use sluice::journal::{IdSet, Journal};
use sluice::{Client, ErrorKind, Halt, RequestError};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::signals::{Signals, StopSignal};
use super::{EXIT_FAILURES, EXIT_HALTED, EXIT_OK};
use crate::progress::Shared;

/// What a run came to.
#[derive(Debug)]
pub struct Outcome {
    /// Input lines that could not be sent (unusable or duplicate).
    pub invalid_lines: u64,
    /// Requests that failed for good.
    pub failed: u64,
    /// Time from start to the end.
    pub wall: Duration,
    /// The signal that stopped the run, if one did.
    pub interrupted: Option<StopSignal>,
    /// Why the run stopped by itself, if it did.
    pub halt: Option<Halt>,
    /// Why the spend cap stopped admission, if it did.
    pub cap_stop: Option<sluice::cost::CapStop>,
    /// How often each failure message was seen.
    pub messages: Messages,
    /// Final results by the number of attempts they took.
    pub attempts: std::collections::BTreeMap<u32, u64>,
}

/// Failure messages with their counts, for the summary's most common ones. Bounded: past
/// [`Messages::MAX`] distinct messages, new ones are only counted as "other".
#[derive(Debug, Default)]
pub struct Messages {
    counts: HashMap<(&'static str, String), u64>,
    /// Failures whose message was not kept.
    pub other: u64,
}

impl Messages {
    const MAX: usize = 10_000;

    fn add(&mut self, code: &'static str, message: &str) {
        if let Some(n) = self.counts.get_mut(&(code, message.to_owned())) {
            *n += 1;
        } else if self.counts.len() < Self::MAX {
            self.counts.insert((code, message.to_owned()), 1);
        } else {
            self.other += 1;
        }
    }

    fn merged(mut self, other: Messages) -> Messages {
        for ((code, message), n) in other.counts {
            *self.counts.entry((code, message)).or_default() += n;
        }
        self.other += other.other;
        self
    }

    /// The `n` most common, most frequent first: count, error code, message.
    pub fn top(&self, n: usize) -> Vec<(u64, &'static str, &str)> {
        let mut all: Vec<_> = self
            .counts
            .iter()
            .map(|((code, message), count)| (*count, *code, message.as_str()))
            .collect();
        all.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.2.cmp(b.2)));
        all.truncate(n);
        all
    }
}

impl Outcome {
    /// The figures of the stats file this run's outcome gives, with what the caller knows
    /// beyond it.
    pub fn figures(
        &self,
        total_lines: Option<u64>,
        resumed: u64,
        earlier_cost: Option<f64>,
        prices_taken: &str,
    ) -> crate::progress::RunFigures {
        crate::progress::RunFigures {
            total_lines,
            resumed,
            invalid_lines: self.invalid_lines,
            attempts_histogram: self.attempts.clone(),
            wall: self.wall,
            earlier_cost,
            prices_taken: prices_taken.to_owned(),
        }
    }

    /// The process exit code (see the README's table), counting `earlier_failures` left in
    /// the errors file by earlier runs of the same output.
    pub fn exit_code(&self, earlier_failures: u64) -> u8 {
        match self.interrupted {
            Some(signal) => signal.exit_code(),
            None if self.halt.is_some() => EXIT_HALTED,
            None if self.cap_stop.is_some() => super::EXIT_SPEND_CAP,
            None if self.invalid_lines + self.failed + earlier_failures > 0 => EXIT_FAILURES,
            None => EXIT_OK,
        }
    }
}

/// What the input tells the writer besides requests.
enum Note {
    Invalid(LineError),
    Duplicate(u64, String),
    ReadFailed(std::io::Error),
    End(u64),
}

/// Results written between two checkpoints at most, so a steady stream of results still
/// reaches the operating system often.
const BATCH: usize = 256;

/// Sends everything `input` holds through `client`, writing each result to `journal`.
#[allow(clippy::too_many_arguments)]
pub async fn execute(
    client: &Client,
    input_name: &str,
    input: InputStream,
    mut journal: Journal,
    mut ids: IdSet,
    in_flight: &Arc<Mutex<BTreeSet<u64>>>,
    signals: &mut Signals,
    drain_timeout: Duration,
    progress: &Shared,
) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let (notes_tx, mut notes) = mpsc::unbounded_channel();
    let requests = input.filter_map(move |item| {
        let request = match item {
            InputItem::Request(line, request) => {
                if ids.insert(&request.custom_id) {
                    Some(request)
                } else {
                    let _ = notes_tx.send(Note::Duplicate(line, request.custom_id));
                    None
                }
            }
            InputItem::Invalid(e) => {
                let _ = notes_tx.send(Note::Invalid(e));
                None
            }
            InputItem::Failed(e) => {
                let _ = notes_tx.send(Note::ReadFailed(e));
                None
            }
            InputItem::End(lines) => {
                let _ = notes_tx.send(Note::End(lines));
                None
            }
        };
        std::future::ready(request)
    });
    let mut results = client.run(Box::pin(requests));
    let mut invalid_lines = 0;
    let mut failed = 0;
    let mut read_error = None;
    let mut total_lines = None;
    let mut interrupted = None;
    let mut deadline: Option<Instant> = None;
    let mut finished_normally = false;
    let mut attempts = std::collections::BTreeMap::new();
    let mut line_messages = Messages::default();
    let mut failure_messages = Messages::default();
    let mut on_note = |note: Note, journal: &mut Journal| -> std::io::Result<()> {
        match note {
            Note::Invalid(e) => {
                invalid_lines += 1;
                line_messages.add(ErrorKind::InvalidInput.code(), &e.message);
                journal.write_line_error(&e)
            }
            Note::Duplicate(line, id) => {
                invalid_lines += 1;
                let e = RequestError::new(
                    ErrorKind::DuplicateId,
                    format!(
                        "{input_name}:{line}: custom_id `{id}` already appears earlier in the input; each line needs its own"
                    ),
                );
                line_messages.add(e.kind.code(), &e.message);
                journal.write_failure(line, Some(&id), &e)
            }
            Note::ReadFailed(e) => {
                read_error = Some(e);
                Ok(())
            }
            Note::End(lines) => {
                total_lines = Some(lines);
                Ok(())
            }
        }
    };
    let snapshot = || -> Vec<u64> {
        in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .copied()
            .collect()
    };
    let files = journal.paths().clone();
    let write_failed = || {
        format!(
            "cannot write {} or {}",
            files.output.display(),
            files.errors.display()
        )
    };
    loop {
        let flush_at = journal.next_flush().map(Instant::from_std);
        tokio::select! {
            biased;
            Some(signal) = signals.recv() => {
                if interrupted.is_some() {
                    break; // a second signal: stop now, abandoning what is in flight
                }
                interrupted = Some(signal);
                deadline = Some(Instant::now() + drain_timeout);
                progress.draining(signal.name());
                results.stop();
            }
            _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => break,
            _ = tokio::time::sleep_until(flush_at.unwrap_or_else(Instant::now)), if flush_at.is_some() => {
                journal.checkpoint(snapshot).with_context(write_failed)?;
            }
            Some(note) = notes.recv() => on_note(note, &mut journal).with_context(write_failed)?,
            result = results.next() => match result {
                Some(result) => {
                    let mut next = Some(result);
                    let mut written = 0;
                    while let Some(r) = next.take() {
                        *attempts.entry(r.attempts).or_default() += 1;
                        if let Err(e) = &r.outcome {
                            failed += 1;
                            failure_messages.add(e.kind.code(), &e.message);
                        }
                        journal.write_result(r.tag, &r).with_context(write_failed)?;
                        written += 1;
                        if written < BATCH {
                            next = results.next().now_or_never().flatten();
                        }
                    }
                    journal.checkpoint(snapshot).with_context(write_failed)?;
                }
                None => {
                    finished_normally = true;
                    break;
                }
            },
        }
    }
    let halt = results.halted();
    let cap_stop = results.cap_stop();
    // Abandon anything still in flight (after a second signal or the drain deadline).
    drop(results);
    while let Ok(note) = notes.try_recv() {
        on_note(note, &mut journal).with_context(write_failed)?;
    }
    let complete = finished_normally
        && interrupted.is_none()
        && halt.is_none()
        && cap_stop.is_none()
        && read_error.is_none()
        && total_lines.is_some();
    journal
        .finish(complete, total_lines, snapshot())
        .with_context(write_failed)?;
    if let Some(e) = read_error {
        anyhow::bail!(
            "reading the input failed: {e}; the results so far are written, and running the same command again resumes"
        );
    }
    Ok(Outcome {
        invalid_lines,
        failed,
        wall: started.elapsed(),
        interrupted,
        halt,
        cap_stop,
        messages: failure_messages.merged(line_messages),
        attempts,
    })
}
