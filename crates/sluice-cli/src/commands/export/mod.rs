//! `sluice export OUT -o answers.csv`: the results of a run as a table, one row per input
//! line in input order (records are written in completion order), with the answer's
//! text, why it stopped, tokens, cost and the error, and with `--with-input` the prompt
//! beside it. Memory stays within `--sort-memory` however large the run.

mod row;
mod sort;
mod write;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use sluice::cost::PriceTable;
use sluice::journal::{JournalPaths, read_state};

use super::{EXIT_OK, usage, values};
use row::{Row, prompt_of};
use sort::Sorter;
use write::{Format, RowWriter};

/// Flags of `sluice export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The output file of a run (`-o` of `sluice run`).
    output: PathBuf,
    /// Where the table goes: CSV or JSONL, by its extension (`.csv`, `.jsonl`).
    #[arg(short = 'o', long = "to", value_name = "FILE")]
    to: PathBuf,
    /// The errors file, if it was not the default.
    #[arg(long)]
    errors: Option<PathBuf>,
    /// The run's input: adds each line's prompt beside its answer, and a `pending` row for
    /// lines without a result yet.
    #[arg(long, value_name = "INPUT")]
    with_input: Option<PathBuf>,
    /// Prices that override the built-in table (as for `sluice run --prices`).
    #[arg(long, value_name = "FILE")]
    prices: Option<PathBuf>,
    /// Rows held in memory at most while restoring input order; more are sorted in
    /// temporary files beside the table.
    #[arg(long, default_value = "256MiB", value_parser = values::bytes)]
    sort_memory: u64,
}

pub async fn run(args: ExportArgs) -> anyhow::Result<ExitCode> {
    tokio::task::spawn_blocking(move || export(&args))
        .await
        .context("the export task failed")?
}

fn export(args: &ExportArgs) -> anyhow::Result<ExitCode> {
    let Some(format) = Format::of(&args.to) else {
        usage!(
            "{}: the table's extension says its format: .csv or .jsonl",
            args.to.display()
        );
    };
    let mut prices = PriceTable::builtin();
    if let Some(p) = &args.prices
        && let Err(e) = prices.merge_file(p)
    {
        usage!("{e}");
    }
    let paths = JournalPaths::for_output(&args.output, args.errors.as_deref());
    let errors = match (&args.errors, read_state(&paths.state)) {
        (None, Ok(state)) => state.errors,
        _ => paths.errors.clone(),
    };
    if !args.output.exists() {
        usage!(
            "{} does not exist (give the -o of a `sluice run`)",
            args.output.display()
        );
    }
    let dir = args
        .to
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .join(format!(".sluice-export-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let result = export_into(args, format, &prices, &[&args.output, &errors], &dir);
    let _ = std::fs::remove_dir_all(&dir);
    let rows = result?;
    eprintln!(
        "sluice: {} rows ({} ok, {} failed{}) written to {}",
        rows.total(),
        rows.ok,
        rows.failed,
        if rows.pending > 0 {
            format!(", {} pending", rows.pending)
        } else {
            String::new()
        },
        args.to.display()
    );
    Ok(ExitCode::from(EXIT_OK))
}

/// Rows written, by status.
#[derive(Debug, Default)]
struct Counts {
    ok: u64,
    failed: u64,
    pending: u64,
}

impl Counts {
    fn total(&self) -> u64 {
        self.ok + self.failed + self.pending
    }
}

fn export_into(
    args: &ExportArgs,
    format: Format,
    prices: &PriceTable,
    files: &[&Path],
    dir: &Path,
) -> anyhow::Result<Counts> {
    let budget = usize::try_from(args.sort_memory).unwrap_or(usize::MAX);
    let mut sorter = Sorter::new(budget, dir.to_owned());
    for path in files {
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot open {}", path.display())),
        };
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let mut buf = Vec::new();
        let mut number = 0u64;
        loop {
            buf.clear();
            if reader
                .read_until(b'\n', &mut buf)
                .with_context(|| format!("cannot read {}", path.display()))?
                == 0
            {
                break;
            }
            number += 1;
            let line = buf.trim_ascii();
            if line.is_empty() {
                continue;
            }
            let Some(row) = Row::from_record(line, prices) else {
                anyhow::bail!(
                    "{}:{number}: not a result record; a run of sluice repairs damaged records when it resumes",
                    path.display()
                );
            };
            sorter
                .push(row)
                .with_context(|| format!("cannot write in {}", dir.display()))?;
        }
    }
    let mut writer = RowWriter::create(&args.to, format, args.with_input.is_some(), dir)?;
    let mut input = match &args.with_input {
        Some(p) => Some(InputLines::open(p)?),
        None => None,
    };
    let mut counts = Counts::default();
    sorter.finish(|row| {
        if let (Some(input), Some(line)) = (input.as_mut(), row.line) {
            while input.next_number() < line {
                let (n, prompt) = input.next()?.expect("a line before `line`");
                writer.pending(n, &prompt)?;
                counts.pending += 1;
            }
        }
        let prompt = match (input.as_mut(), row.line) {
            (Some(input), Some(line)) if input.next_number() == line => {
                input.next()?.map(|(_, p)| p)
            }
            _ => None,
        };
        if row.failed {
            counts.failed += 1;
        } else {
            counts.ok += 1;
        }
        writer.row(&row, prompt.as_deref())
    })?;
    if let Some(input) = input.as_mut() {
        while let Some((n, prompt)) = input.next()? {
            writer.pending(n, &prompt)?;
            counts.pending += 1;
        }
    }
    writer.finish()?;
    Ok(counts)
}

/// The input, read line by line beside the sorted rows.
struct InputLines {
    reader: BufReader<std::fs::File>,
    buf: Vec<u8>,
    /// The number of the next line.
    next: u64,
    done: bool,
}

impl InputLines {
    fn open(path: &Path) -> anyhow::Result<Self> {
        let file =
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        Ok(InputLines {
            reader: BufReader::with_capacity(1 << 20, file),
            buf: Vec::new(),
            next: 1,
            done: false,
        })
    }

    /// The number of the line [`InputLines::next`] reads; past the end, `u64::MAX`.
    fn next_number(&self) -> u64 {
        if self.done { u64::MAX } else { self.next }
    }

    fn next(&mut self) -> std::io::Result<Option<(u64, String)>> {
        self.buf.clear();
        if self.done || self.reader.read_until(b'\n', &mut self.buf)? == 0 {
            self.done = true;
            return Ok(None);
        }
        let n = self.next;
        self.next += 1;
        let line = self.buf.strip_suffix(b"\n").unwrap_or(&self.buf);
        // A UTF-8 byte order mark on the first line is not part of the prompt.
        let line = if n == 1 {
            line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line)
        } else {
            line
        };
        Ok(Some((n, prompt_of(line))))
    }
}
