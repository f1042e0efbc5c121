//! Durable runs: the output and errors files are the record of what is done, and a small
//! state file beside them says which input they belong to.
//!
//! - Every record carries its input line number, so a resumed run rebuilds a one-bit-a-line
//!   set of done lines by scanning the files, and skips those lines without parsing them.
//! - A torn last line (a crash mid-write) is cut off before the scan; that request is sent
//!   again, so records are exactly once and calls at least once.
//! - Records reach the operating system after every batch of results (a `kill -9` loses at
//!   most what was in flight) and the disk at checkpoints (`SyncPolicy`).
//! - The state file is replaced atomically (write temp, fsync, rename, fsync directory);
//!   every file is created 0600.

mod files;
mod fingerprint;
mod guard;
mod idset;
mod lineset;
mod recover;
mod syncer;

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

pub use files::{open_append, replace_atomically, sync_dir};
pub use fingerprint::Fingerprint;
pub use guard::{GuardError, Role, RunLock, running};
pub use idset::IdSet;
pub use lineset::LineSet;
pub use recover::{RecordId, ScanReport, repair, repair_torn_tail, scan};

use crate::error::{ErrorKind, RequestError};
use crate::input::LineError;
use crate::outcome::BatchResult;
use crate::output::{RecordFormat, write_failure, write_result};
use syncer::Syncer;

pub use recover::identify;

/// When records are forced to disk with fsync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// Every batch of records, as soon as the previous fsync is done: safest, slowest.
    Always,
    /// At most this long after a record is written, sooner once [`SYNC_AFTER_BYTES`] of
    /// records wait, and at the end (the default: 1 s).
    Every(Duration),
    /// Never explicitly; the operating system writes when it likes. A process crash
    /// loses nothing written; a power loss may.
    Never,
}

impl Default for SyncPolicy {
    fn default() -> Self {
        SyncPolicy::Every(Duration::from_secs(1))
    }
}

/// Where a run keeps its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalPaths {
    /// Successful results.
    pub output: PathBuf,
    /// Permanent failures and unusable lines.
    pub errors: PathBuf,
    /// The run's state.
    pub state: PathBuf,
    /// The lock that keeps a second run off the same output.
    pub lock: PathBuf,
    /// The statistics written at the end of a run.
    pub stats: PathBuf,
}

impl JournalPaths {
    /// The default layout for an output file: `results.jsonl` gives
    /// `results.errors.jsonl` and `results.sluice-state.json` beside it.
    pub fn for_output(output: &Path, errors: Option<&Path>) -> Self {
        let stem = output
            .file_stem()
            .map_or_else(|| "output".to_owned(), |s| s.to_string_lossy().into_owned());
        JournalPaths {
            output: output.to_owned(),
            errors: errors.map_or_else(
                || output.with_file_name(format!("{stem}.errors.jsonl")),
                Path::to_owned,
            ),
            state: output.with_file_name(format!("{stem}.sluice-state.json")),
            lock: output.with_file_name(format!("{stem}.sluice-lock")),
            stats: output.with_file_name(format!("{stem}.sluice-stats.json")),
        }
    }
}

/// What the run reads, as the state file remembers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputIdentity {
    /// The path as given (`-` for stdin).
    pub path: String,
    /// Its fingerprint; `None` for stdin, which cannot be checked.
    pub fingerprint: Option<Fingerprint>,
}

impl InputIdentity {
    /// Identifies the input at `path`.
    pub fn of(path: &Path) -> io::Result<Self> {
        let fingerprint = if path == Path::new("-") {
            None
        } else {
            Some(Fingerprint::of(path)?)
        };
        Ok(InputIdentity {
            path: path.display().to_string(),
            fingerprint,
        })
    }
}

/// The state file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunState {
    /// Format version of this file.
    pub version: u32,
    /// The input this output belongs to.
    pub input: InputIdentity,
    /// The errors file.
    pub errors: PathBuf,
    /// True once every input line has its record.
    pub complete: bool,
    /// Input lines sent and not yet recorded at the last checkpoint: if the run dies, the
    /// next one sends them again, and counts them as possibly duplicated calls.
    pub in_flight: Vec<u64>,
    /// Input lines, once the whole input has been read.
    pub total_lines: Option<u64>,
}

/// Why a journal cannot be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// The input is not the one the existing results belong to.
    #[error(
        "{input} changed since the run that wrote {output} ({what}); start over, discarding the \
         {records} results there, or write elsewhere"
    )]
    InputChanged {
        /// The input.
        input: String,
        /// The output.
        output: String,
        /// What differs.
        what: String,
        /// Records that would be discarded.
        records: u64,
    },
    /// Results exist but no state says what they belong to.
    #[error(
        "{output} already has results but no {state}, so sluice cannot tell which input they belong to; \
         start over, overwriting it, or write elsewhere"
    )]
    OutputWithoutState {
        /// The output.
        output: String,
        /// The missing state file.
        state: String,
    },
    /// Another run holds the output, two roles share a file, or a path is a directory.
    #[error(transparent)]
    Guard(#[from] GuardError),
    /// A file could not be read or written.
    #[error("{path}")]
    Io {
        /// The file.
        path: String,
        /// What happened.
        #[source]
        source: io::Error,
    },
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> JournalError + '_ {
    move |source| JournalError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// How to open a journal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpenOptions {
    /// Discard existing results and state.
    pub restart: bool,
    /// Take permanent request failures out of the errors file so they are sent again.
    pub retry_failed: bool,
    /// When to fsync.
    pub sync: SyncPolicy,
    /// The shape of the records written.
    pub format: RecordFormat,
}

/// What a previous run left.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Input lines that have their record.
    pub done: LineSet,
    /// `custom_id`s of the records (compact for an input that can be read again: its hits
    /// are suspects; see [`IdSet::hits_are_suspects`]).
    pub ids: IdSet,
    /// Success records.
    pub ok: u64,
    /// Failure records.
    pub failed: u64,
    /// Lines that were in flight when the previous run stopped (sent again now).
    pub previously_in_flight: Vec<u64>,
    /// Failure records taken out by `retry_failed`.
    pub retrying: u64,
    /// Bytes of torn records cut off.
    pub repaired_bytes: u64,
    /// Lines of the output or errors file that were not whole records (corruption after a
    /// power loss, say) and were removed; their input lines are sent again.
    pub unreadable: u64,
    /// Second records for one input line that were removed (the first is kept).
    pub duplicates: u64,
    /// Whether there was a previous run at all.
    pub resumed: bool,
    /// The input's lines, as an earlier run counted them (the input is unchanged).
    pub total_lines: Option<u64>,
    /// Tokens the success records report, by the model the server named (`""` when it
    /// named none): what earlier runs spent.
    pub billed: std::collections::BTreeMap<String, crate::Usage>,
}

/// The longest a written record waits in memory before it is handed to the operating
/// system. Writing every record at once costs a system call each; this batches them.
pub const FLUSH_EVERY: Duration = Duration::from_millis(10);

/// Under [`SyncPolicy::Every`], records waiting for a sync that start one before its time:
/// a fast run writes tens of MB a second, and the disk then takes tens of milliseconds to
/// force them at once, at the end of the run where nothing else overlaps it (and a power
/// loss would take them all). Forced in slices of this size by the syncer's thread while
/// the run goes on, the final sync has little left to do.
pub const SYNC_AFTER_BYTES: u64 = 4 << 20;

/// Failure records that `retry_failed` keeps: reading a duplicate line again gives the
/// same answer. Every other failure is taken out, and its line read (and, if it is usable
/// now, sent) again: an invalid line is re-read at no cost, so a run that failed for want
/// of a flag (`--model`) recovers by being run again with it and `--retry-failed`.
const KEPT_BY_RETRY_FAILED: [&str; 1] = [ErrorKind::DuplicateId.code()];

/// The writer of a durable run.
pub struct Journal {
    paths: JournalPaths,
    output: BufWriter<File>,
    errors: BufWriter<File>,
    state: RunState,
    sync: SyncPolicy,
    last_sync: Instant,
    unsynced: bool,
    /// Bytes of records written since the last sync was asked for.
    unsynced_bytes: u64,
    /// Records written to the buffers since they were last handed to the OS.
    unflushed: bool,
    last_flush: Instant,
    run_id: u64,
    counter: u64,
    scratch: Vec<u8>,
    /// The id of the record being written.
    id: String,
    /// The length of its run's part (0 until it is written).
    id_prefix: usize,
    /// The shape of the records written.
    format: RecordFormat,
    /// Forces the files to disk and writes the state file, off the caller's thread.
    syncer: Syncer,
    /// Held for the whole run: no second run writes these files meanwhile.
    _lock: RunLock,
}

impl Journal {
    /// Opens (or creates) the files at `paths` for `input`, recovering what a previous run
    /// wrote. Refuses when the input changed or results exist without state, unless
    /// `options.restart`.
    pub fn open(
        paths: JournalPaths,
        input: InputIdentity,
        options: OpenOptions,
    ) -> Result<(Journal, Recovered), JournalError> {
        guard::distinct(&[
            (Role::Input, Path::new(&input.path)),
            (Role::Output, &paths.output),
            (Role::Errors, &paths.errors),
            (Role::State, &paths.state),
            (Role::Stats, &paths.stats),
        ])?;
        let lock = guard::lock(&paths.lock, &paths.output)?;
        for p in [&paths.state, &paths.output, &paths.errors] {
            guard::remove_leftover_temps(p).map_err(io_at(p))?;
        }
        if options.restart {
            for p in [&paths.output, &paths.errors, &paths.state] {
                match std::fs::remove_file(p) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_at(p)(e)),
                }
            }
        }
        let previous: Option<RunState> = match std::fs::read(&paths.state) {
            Ok(bytes) => serde_json::from_slice(&bytes).ok(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_at(&paths.state)(e)),
        };
        let mut recovered = Recovered::default();
        // An input that can be read again can have its suspected duplicates confirmed,
        // so its ids are kept compact; standard input keeps exact ones.
        if input.path != "-" {
            recovered.ids = IdSet::compact();
        }
        match &previous {
            None => {
                let has_results = [&paths.output, &paths.errors]
                    .iter()
                    .any(|p| std::fs::metadata(p).is_ok_and(|m| m.len() > 0));
                if has_results {
                    return Err(JournalError::OutputWithoutState {
                        output: paths.output.display().to_string(),
                        state: paths.state.display().to_string(),
                    });
                }
            }
            Some(state) => {
                if let Some(what) = difference(&state.input, &input) {
                    let mut records = 0;
                    for p in [&paths.output, &paths.errors] {
                        scan(p, |_| {
                            records += 1;
                            true
                        })
                        .map_err(io_at(p))?;
                    }
                    return Err(JournalError::InputChanged {
                        input: input.path.clone(),
                        output: paths.output.display().to_string(),
                        what,
                        records,
                    });
                }
                recovered.resumed = true;
                recovered.total_lines = state.total_lines;
                recovered.previously_in_flight = state.in_flight.clone();
                for (p, is_errors) in [(&paths.output, false), (&paths.errors, true)] {
                    let retry_failed = is_errors && options.retry_failed;
                    let report = scan_into(p, is_errors, retry_failed, &mut recovered)?;
                    recovered.repaired_bytes += report.torn_bytes;
                    recovered.unreadable += report.unreadable;
                    repair(p, &report).map_err(io_at(p))?;
                }
                recovered
                    .previously_in_flight
                    .retain(|line| !recovered.done.contains(*line));
            }
        }
        let output = open_append(&paths.output).map_err(io_at(&paths.output))?;
        let errors = open_append(&paths.errors).map_err(io_at(&paths.errors))?;
        for p in [&paths.output, &paths.errors] {
            guard::make_private(p).map_err(io_at(p))?;
        }
        let syncer = Syncer::start(
            [
                output.try_clone().map_err(io_at(&paths.output))?,
                errors.try_clone().map_err(io_at(&paths.errors))?,
            ],
            paths.state.clone(),
        )
        .map_err(io_at(&paths.state))?;
        let state = RunState {
            version: 1,
            input,
            errors: paths.errors.clone(),
            complete: false,
            in_flight: Vec::new(),
            total_lines: previous.and_then(|p| p.total_lines),
        };
        let journal = Journal {
            format: options.format,
            output: BufWriter::with_capacity(256 * 1024, output),
            errors: BufWriter::with_capacity(64 * 1024, errors),
            state,
            sync: options.sync,
            last_sync: Instant::now(),
            unsynced: false,
            unsynced_bytes: 0,
            unflushed: false,
            last_flush: Instant::now(),
            run_id: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            counter: 0,
            scratch: Vec::with_capacity(4096),
            id: String::with_capacity(48),
            id_prefix: 0,
            syncer,
            paths,
            _lock: lock,
        };
        sync_dir(&journal.paths.output).map_err(io_at(&journal.paths.output))?;
        journal.save_state().map_err(io_at(&journal.paths.state))?;
        Ok((journal, recovered))
    }

    /// The files.
    pub fn paths(&self) -> &JournalPaths {
        &self.paths
    }

    /// Makes the next record's id, `batch_req_<run id><counter>` in hex, in `self.id` (a
    /// buffer kept for it, not a new string per record): the run's part is written once,
    /// the counter's after it each time.
    fn next_id(&mut self) {
        use std::fmt::Write as _;
        self.counter += 1;
        if self.id_prefix == 0 {
            self.id.clear();
            let _ = write!(self.id, "batch_req_{:x}", self.run_id);
            self.id_prefix = self.id.len();
        }
        self.id.truncate(self.id_prefix);
        let _ = write!(self.id, "{:08x}", self.counter);
    }

    /// Appends a request's final result, tagged with its input line.
    pub fn write_result(&mut self, line: u64, result: &BatchResult) -> io::Result<()> {
        self.next_id();
        self.scratch.clear();
        write_result(&mut self.scratch, self.format, &self.id, Some(line), result);
        let target = if result.outcome.is_ok() {
            &mut self.output
        } else {
            &mut self.errors
        };
        self.unsynced = true;
        self.unsynced_bytes += self.scratch.len() as u64;
        self.unflushed = true;
        target.write_all(&self.scratch)
    }

    /// Appends the record of an input line that cannot be sent.
    pub fn write_line_error(&mut self, e: &LineError) -> io::Result<()> {
        let error = RequestError::new(ErrorKind::InvalidInput, e.to_string());
        self.write_failure(e.line, e.custom_id.as_deref(), &error)
    }

    /// Appends a failure record for a line that was never sent (a duplicate id, say).
    pub fn write_failure(
        &mut self,
        line: u64,
        custom_id: Option<&str>,
        error: &RequestError,
    ) -> io::Result<()> {
        self.next_id();
        self.scratch.clear();
        write_failure(
            &mut self.scratch,
            self.format,
            &self.id,
            custom_id,
            Some(line),
            error,
        );
        self.unsynced = true;
        self.unsynced_bytes += self.scratch.len() as u64;
        self.unflushed = true;
        self.errors.write_all(&self.scratch)
    }

    /// When buffered records are due to reach the operating system, if any are buffered.
    pub fn next_flush(&self) -> Option<Instant> {
        self.unflushed.then(|| self.last_flush + FLUSH_EVERY)
    }

    /// Hands buffered records to the operating system once they have waited
    /// [`FLUSH_EVERY`] (a `kill -9` loses at most that much; with `SyncPolicy::Always`, at
    /// once), and asks the syncer to force them to disk when the sync policy says it is
    /// time, recording the lines now in flight in the state file after them.
    pub fn checkpoint(&mut self, in_flight: impl FnOnce() -> Vec<u64>) -> io::Result<()> {
        let now = Instant::now();
        let sync_due = match self.sync {
            SyncPolicy::Always => self.unsynced,
            SyncPolicy::Every(d) => {
                self.unsynced
                    && (self.unsynced_bytes >= SYNC_AFTER_BYTES || self.last_sync.elapsed() >= d)
            }
            SyncPolicy::Never => false,
        };
        // A sync needs the records with the OS first; so does `always`.
        let flush_due = sync_due
            || matches!(self.sync, SyncPolicy::Always)
            || now >= self.last_flush + FLUSH_EVERY;
        if self.unflushed && flush_due {
            self.output.flush()?;
            self.errors.flush()?;
            self.unflushed = false;
            self.last_flush = now;
        }
        if sync_due {
            // The records are with the OS now; the syncer forces them to disk, then records
            // the lines in flight in the state file.
            self.state.in_flight = in_flight();
            self.syncer.request(self.state_bytes()?)?;
            self.last_sync = now;
            self.unsynced = false;
            self.unsynced_bytes = 0;
        }
        Ok(())
    }

    /// Writes everything, waits for the syncer, and records how the run ended.
    pub fn finish(
        &mut self,
        complete: bool,
        total_lines: Option<u64>,
        in_flight: Vec<u64>,
    ) -> io::Result<()> {
        self.output.flush()?;
        self.errors.flush()?;
        self.unflushed = false;
        self.syncer.drain()?;
        if !matches!(self.sync, SyncPolicy::Never) {
            self.output.get_ref().sync_data()?;
            self.errors.get_ref().sync_data()?;
        }
        self.state.complete = complete;
        self.state.in_flight = in_flight;
        if total_lines.is_some() {
            self.state.total_lines = total_lines;
        }
        self.save_state()
    }

    fn state_bytes(&self) -> io::Result<Vec<u8>> {
        serde_json::to_vec_pretty(&self.state).map_err(io::Error::other)
    }

    fn save_state(&self) -> io::Result<()> {
        replace_atomically(&self.paths.state, &self.state_bytes()?)
    }
}

/// Reads the state file of a run, for `sluice status`.
pub fn read_state(path: &Path) -> io::Result<RunState> {
    let bytes = std::fs::read(path)?;
    serde_json::from_slice(&bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// What differs between the input a run was made from and the one given now.
fn difference(before: &InputIdentity, now: &InputIdentity) -> Option<String> {
    match (&before.fingerprint, &now.fingerprint) {
        (Some(a), Some(b)) if a.size != b.size => Some(format!(
            "its size was {} bytes and is now {}",
            a.size, b.size
        )),
        (Some(a), Some(b)) if a != b => Some(format!(
            "its size is the same ({} bytes) but its content differs",
            a.size
        )),
        (Some(_), Some(_)) => None,
        (None, None) => Some("it is stdin, which cannot be checked".to_owned()),
        (None, Some(_)) => Some("the first run read stdin".to_owned()),
        (Some(_), None) => Some("it is now stdin, which cannot be checked".to_owned()),
    }
}

/// Scans one file into `recovered`: every record's line becomes done and its id taken,
/// except a second record for a line already done (rejected, and removed by the repair)
/// and, with `retry_failed`, the failures that reading the line again could change.
fn scan_into(
    path: &Path,
    is_errors: bool,
    retry_failed: bool,
    recovered: &mut Recovered,
) -> Result<ScanReport, JournalError> {
    let report = scan(path, |r| {
        if let Some(line) = r.line {
            if recovered.done.contains(line) {
                recovered.duplicates += 1;
                return false;
            }
            if retry_failed
                && r.error_code
                    .as_deref()
                    .is_none_or(|code| !KEPT_BY_RETRY_FAILED.contains(&code))
            {
                recovered.retrying += 1;
                return false;
            }
            recovered.done.insert(line);
        }
        // A duplicate's id belongs to the earlier line that has it.
        if r.error_code.as_deref() != Some(ErrorKind::DuplicateId.code())
            && let Some(id) = &r.custom_id
        {
            // A run writes one record per id (later duplicates get duplicate_custom_id
            // records, left out above), so no lookup is needed.
            recovered.ids.insert_new(id);
        }
        if is_errors {
            recovered.failed += 1;
        } else {
            recovered.ok += 1;
        }
        if let Some(b) = r.billed {
            let model = b.model.unwrap_or_default();
            let total = match recovered.billed.get_mut(&model) {
                Some(t) => t,
                None => recovered.billed.entry(model).or_default(),
            };
            total.prompt_tokens += b.usage.prompt_tokens;
            total.completion_tokens += b.usage.completion_tokens;
            total.cached_tokens += b.usage.cached_tokens;
        }
        true
    })
    .map_err(io_at(path))?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A journal for a fresh input in a folder of its own, syncing at most once an hour
    /// by the clock.
    fn hourly_journal(name: &str) -> (Journal, PathBuf) {
        let dir =
            std::env::temp_dir().join(format!("sluice-journal-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let input = dir.join("in.jsonl");
        std::fs::write(&input, "{}\n").unwrap();
        let paths = JournalPaths::for_output(&dir.join("out.jsonl"), None);
        let state = paths.state.clone();
        let options = OpenOptions {
            sync: SyncPolicy::Every(Duration::from_secs(3600)),
            ..OpenOptions::default()
        };
        let identity = InputIdentity::of(&input).unwrap();
        let (journal, _) = Journal::open(paths, identity, options).unwrap();
        (journal, state)
    }

    /// Writes failure records of about a kilobyte each until `bytes` are written.
    fn write_records(journal: &mut Journal, bytes: u64) {
        let error = RequestError::new(ErrorKind::InvalidInput, "x".repeat(1000));
        let mut line = 0;
        while journal.unsynced_bytes < bytes {
            line += 1;
            journal.write_failure(line, Some("id"), &error).unwrap();
        }
    }

    #[test]
    fn records_past_the_sync_volume_are_forced_to_disk_before_the_clock_says_so() {
        let (mut journal, state) = hourly_journal("volume");
        let in_flight = |journal: &Journal| {
            journal.syncer.drain().unwrap();
            read_state(&state).unwrap().in_flight
        };
        write_records(&mut journal, SYNC_AFTER_BYTES / 2);
        journal.checkpoint(|| vec![7]).unwrap();
        assert_eq!(
            in_flight(&journal),
            Vec::<u64>::new(),
            "half the volume waits for the clock"
        );
        write_records(&mut journal, SYNC_AFTER_BYTES);
        journal.checkpoint(|| vec![7]).unwrap();
        assert_eq!(in_flight(&journal), vec![7], "the volume starts a sync");
        assert_eq!(journal.unsynced_bytes, 0);
    }

    #[test]
    fn an_io_error_is_said_once_not_in_the_message_and_again_as_its_cause() {
        let e = JournalError::Io {
            path: "out.jsonl".into(),
            source: io::Error::from_raw_os_error(28),
        };
        let cause = std::error::Error::source(&e)
            .expect("the cause is kept")
            .to_string();
        assert!(!e.to_string().contains(&cause), "{e}");
        let guard = JournalError::from(GuardError::Io {
            path: "out.sluice-lock".into(),
            source: io::Error::from_raw_os_error(28),
        });
        let chain: Vec<String> =
            std::iter::successors(Some(&guard as &dyn std::error::Error), |e| e.source())
                .map(ToString::to_string)
                .collect();
        let os = chain.iter().filter(|m| m.contains("os error 28")).count();
        assert_eq!(os, 1, "{chain:?}");
    }
}
