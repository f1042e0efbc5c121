//! The loop between the engine and the files: feeds the input to the engine (turning
//! unusable and duplicate lines into error records), writes every result to the journal,
//! checkpoints the requests in flight, and stops when told.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::suspects::{Reread, Suspects, Verdict};
use super::{DurableError, Messages, RunControl};
use crate::Client;
use crate::cost::CapStop;
use crate::error::{ErrorKind, RequestError};
use crate::halt::Halt;
use crate::input::{InputItem, InputStream, LineError};
use crate::journal::{IdSet, Journal};

/// What a durable run came to.
#[derive(Debug)]
#[non_exhaustive]
pub struct Report {
    /// Input lines that could not be sent (unusable or duplicate).
    pub invalid_lines: u64,
    /// Requests that failed for good.
    pub failed: u64,
    /// Time from start to the end.
    pub wall: Duration,
    /// Whether [`RunControl::stop`] stopped it.
    pub stopped: bool,
    /// Why the run stopped by itself, if it did.
    pub halt: Option<Halt>,
    /// Why the spend cap stopped admission, if it did.
    pub cap_stop: Option<CapStop>,
    /// How often each failure message was seen.
    pub messages: Messages,
    /// Final results by the number of attempts they took.
    pub attempts: BTreeMap<u32, u64>,
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
///
/// With a compact id set and an input that can be read again (`reread`), a line whose id
/// may have been seen is held back and confirmed at the end ([`super::suspects`]).
pub(super) async fn drive(
    client: &Client,
    input_name: &str,
    input: InputStream,
    mut journal: Journal,
    mut ids: IdSet,
    reread: Option<Reread>,
    control: RunControl,
) -> Result<Report, DurableError> {
    let started = Instant::now();
    let (notes_tx, mut notes) = mpsc::unbounded_channel();
    let suspects = Suspects::default();
    let reread = reread.filter(|_| ids.hits_are_suspects());
    let held = reread.is_some().then(|| suspects.clone());
    let confirm_notes = notes_tx.clone();
    let requests = input.filter_map(move |item| {
        let request = match item {
            InputItem::Request(line, request) => {
                if ids.insert(&request.custom_id) {
                    Some(request)
                } else if let Some(held) = &held {
                    held.hold(line, request);
                    None
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
    let confirmed = futures::stream::iter(reread)
        .flat_map(move |reread| suspects.clone().confirm(reread))
        .filter_map(move |verdict| {
            std::future::ready(match verdict {
                Verdict::Send(request) => Some(request),
                Verdict::Duplicate(line, id) => {
                    let _ = confirm_notes.send(Note::Duplicate(line, id));
                    None
                }
                Verdict::Unread(e) => {
                    let _ = confirm_notes.send(Note::ReadFailed(e));
                    None
                }
            })
        });
    let mut results = client.run(Box::pin(requests.chain(confirmed)));
    let mut invalid_lines = 0;
    let mut failed = 0;
    let mut read_error = None;
    let mut total_lines = None;
    let mut stopped = false;
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
    let in_flight = results.in_flight_handle();
    let snapshot = || in_flight.tags();
    let files = journal.paths().clone();
    let write_failed = |source| DurableError::Write {
        output: files.output.display().to_string(),
        errors: files.errors.display().to_string(),
        source,
    };
    loop {
        let flush_at = journal.next_flush().map(Instant::from_std);
        tokio::select! {
            biased;
            _ = control.abort.cancelled() => break, // abandon what is in flight
            _ = control.stop.cancelled(), if !stopped => {
                stopped = true;
                deadline = Some(Instant::now() + control.drain_timeout);
                results.stop();
            }
            _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => break,
            _ = tokio::time::sleep_until(flush_at.unwrap_or_else(Instant::now)), if flush_at.is_some() => {
                journal.checkpoint(snapshot).map_err(write_failed)?;
            }
            Some(note) = notes.recv() => on_note(note, &mut journal).map_err(write_failed)?,
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
                        journal.write_result(r.tag, &r).map_err(write_failed)?;
                        written += 1;
                        if written < BATCH {
                            next = results.next().now_or_never().flatten();
                        }
                    }
                    journal.checkpoint(snapshot).map_err(write_failed)?;
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
    // Abandon anything still in flight (after an abort or the drain deadline).
    drop(results);
    while let Ok(note) = notes.try_recv() {
        on_note(note, &mut journal).map_err(write_failed)?;
    }
    let complete = finished_normally
        && !stopped
        && halt.is_none()
        && cap_stop.is_none()
        && read_error.is_none()
        && total_lines.is_some();
    journal
        .finish(complete, total_lines, snapshot())
        .map_err(write_failed)?;
    if let Some(source) = read_error {
        return Err(DurableError::InputRead {
            path: input_name.to_owned(),
            source,
        });
    }
    Ok(Report {
        invalid_lines,
        failed,
        wall: started.elapsed(),
        stopped,
        halt,
        cap_stop,
        messages: failure_messages.merged(line_messages),
        attempts,
    })
}
