//! The output and errors files: created 0600 (results can be private), written through a
//! buffer, one complete line per record.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use sluice::input::LineError;
use sluice::output::{write_error, write_result};
use sluice::{BatchResult, ErrorKind, RequestError};

/// Where results go.
pub struct Sink {
    output: Writer,
    errors: Writer,
    run_id: u64,
    counter: u64,
    scratch: Vec<u8>,
    /// Input lines that were not sent, by kind.
    pub invalid_lines: std::collections::BTreeMap<String, u64>,
}

struct Writer {
    path: PathBuf,
    file: BufWriter<File>,
}

impl Writer {
    fn create(path: &Path) -> anyhow::Result<Self> {
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Writer {
            path: path.to_owned(),
            file: BufWriter::with_capacity(256 * 1024, file),
        })
    }

    fn write(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        self.file
            .write_all(bytes)
            .with_context(|| format!("cannot write {}", self.path.display()))
    }
}

/// The default errors path: `results.jsonl` gives `results.errors.jsonl`.
pub fn default_errors_path(output: &Path) -> PathBuf {
    let stem = output
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".to_owned());
    output.with_file_name(format!("{stem}.errors.jsonl"))
}

impl Sink {
    /// Creates (truncating) both files.
    pub fn create(output: &Path, errors: &Path) -> anyhow::Result<Self> {
        Ok(Sink {
            output: Writer::create(output)?,
            errors: Writer::create(errors)?,
            run_id: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            counter: 0,
            scratch: Vec::with_capacity(4096),
            invalid_lines: Default::default(),
        })
    }

    fn next_id(&mut self) -> String {
        self.counter += 1;
        format!("batch_req_{:x}{:08x}", self.run_id, self.counter)
    }

    /// Writes a request's final result to the output or the errors file.
    pub fn result(&mut self, result: &BatchResult) -> anyhow::Result<()> {
        let id = self.next_id();
        self.scratch.clear();
        write_result(&mut self.scratch, &id, result);
        let target = if result.outcome.is_ok() {
            &mut self.output
        } else {
            &mut self.errors
        };
        target.write(&self.scratch)
    }

    /// Writes an input line that could not be sent to the errors file.
    pub fn invalid_line(&mut self, e: &LineError) -> anyhow::Result<()> {
        *self
            .invalid_lines
            .entry(e.kind.name().to_owned())
            .or_default() += 1;
        let id = self.next_id();
        let error = RequestError::new(ErrorKind::InvalidInput, e.to_string());
        self.scratch.clear();
        write_error(
            &mut self.scratch,
            &id,
            e.custom_id.as_deref(),
            Some(e.line),
            &error,
        );
        self.errors.write(&self.scratch)
    }

    /// Flushes both files to the operating system.
    pub fn flush(&mut self) -> anyhow::Result<()> {
        for w in [&mut self.output, &mut self.errors] {
            w.file
                .flush()
                .with_context(|| format!("cannot write {}", w.path.display()))?;
        }
        Ok(())
    }

    /// The two paths.
    pub fn paths(&self) -> (&Path, &Path) {
        (&self.output.path, &self.errors.path)
    }
}
