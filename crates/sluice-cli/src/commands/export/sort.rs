//! Rows back into input order with bounded memory: rows are gathered up to a byte budget,
//! sorted, and spilled to temporary files as sorted runs; the runs are then merged. A
//! file whose records fit the budget is sorted in memory and touches no disk. Records
//! carry their input line, so 100M lines need only the budget and a few open files.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use super::row::Row;

/// The order of the export: input line, then (for records without one, last) the order
/// they were read.
fn key(row: &Row) -> (u64, u64) {
    (row.line.unwrap_or(u64::MAX), row.seq)
}

/// Gathers rows and hands them back in order.
pub struct Sorter {
    budget: usize,
    held: Vec<Row>,
    held_bytes: usize,
    runs: Vec<PathBuf>,
    dir: PathBuf,
    /// Rows added so far (the `seq` of the next).
    added: u64,
}

impl Sorter {
    /// Sorts with at most about `budget` bytes of rows in memory, spilling runs into
    /// `dir` (created and removed by the caller).
    pub fn new(budget: usize, dir: PathBuf) -> Self {
        Sorter {
            budget,
            held: Vec::new(),
            held_bytes: 0,
            runs: Vec::new(),
            dir,
            added: 0,
        }
    }

    /// Runs spilled to disk so far.
    #[cfg(test)]
    pub fn spilled_runs(&self) -> usize {
        self.runs.len()
    }

    pub fn push(&mut self, mut row: Row) -> io::Result<()> {
        row.seq = self.added;
        self.added += 1;
        self.held_bytes += size_of(&row);
        self.held.push(row);
        if self.held_bytes >= self.budget {
            self.spill()?;
        }
        Ok(())
    }

    fn spill(&mut self) -> io::Result<()> {
        self.held.sort_by_key(key);
        let path = self.dir.join(format!("run-{}.jsonl", self.runs.len()));
        let mut out = BufWriter::new(File::create(&path)?);
        for row in self.held.drain(..) {
            serde_json::to_writer(&mut out, &row)?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
        self.held_bytes = 0;
        self.runs.push(path);
        Ok(())
    }

    /// Every row, in order, to `each`.
    pub fn finish(mut self, mut each: impl FnMut(Row) -> io::Result<()>) -> io::Result<()> {
        self.held.sort_by_key(key);
        if self.runs.is_empty() {
            return self.held.into_iter().try_for_each(each);
        }
        let mut sources: Vec<Source> = self
            .runs
            .iter()
            .map(|p| Source::open(p))
            .collect::<io::Result<_>>()?;
        sources.push(Source::Memory(std::mem::take(&mut self.held).into_iter()));
        let mut heap = BinaryHeap::new();
        let mut heads: Vec<Option<Row>> = Vec::with_capacity(sources.len());
        for (i, s) in sources.iter_mut().enumerate() {
            let head = s.next()?;
            if let Some(r) = &head {
                heap.push(Reverse((key(r), i)));
            }
            heads.push(head);
        }
        while let Some(Reverse((_, i))) = heap.pop() {
            let row = heads[i].take().expect("a head for every entry in the heap");
            let next = sources[i].next()?;
            if let Some(r) = &next {
                heap.push(Reverse((key(r), i)));
            }
            heads[i] = next;
            each(row)?;
        }
        Ok(())
    }
}

/// Bytes a row holds, roughly.
fn size_of(row: &Row) -> usize {
    let s = |o: &Option<String>| o.as_ref().map_or(0, String::len);
    std::mem::size_of::<Row>()
        + s(&row.custom_id)
        + s(&row.text)
        + s(&row.embedding)
        + s(&row.finish_reason)
        + s(&row.model)
        + s(&row.error_code)
        + s(&row.error_message)
}

enum Source {
    File(BufReader<File>, Vec<u8>),
    Memory(std::vec::IntoIter<Row>),
}

impl Source {
    fn open(path: &Path) -> io::Result<Source> {
        Ok(Source::File(BufReader::new(File::open(path)?), Vec::new()))
    }

    fn next(&mut self) -> io::Result<Option<Row>> {
        match self {
            Source::Memory(rows) => Ok(rows.next()),
            Source::File(reader, buf) => {
                buf.clear();
                if reader.read_until(b'\n', buf)? == 0 {
                    return Ok(None);
                }
                serde_json::from_slice(buf)
                    .map(Some)
                    .map_err(io::Error::other)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(line: Option<u64>) -> Row {
        Row {
            line,
            custom_id: line.map(|l| format!("c{l}")),
            text: Some("x".repeat(50)),
            ..Row::default()
        }
    }

    #[test]
    fn spilled_runs_merge_back_into_line_order() {
        let dir = std::env::temp_dir().join(format!("sluice-sort-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut sorter = Sorter::new(4096, dir.clone());
        // A scrambled order: 7919 is prime, so i * 7919 mod 2000 visits every line once.
        for i in 0..2000u64 {
            sorter.push(row(Some(i * 7919 % 2000 + 1))).unwrap();
        }
        sorter.push(row(None)).unwrap();
        assert!(sorter.spilled_runs() > 5, "{} runs", sorter.spilled_runs());
        let mut lines = Vec::new();
        sorter
            .finish(|r| {
                lines.push(r.line);
                Ok(())
            })
            .unwrap();
        let mut want: Vec<Option<u64>> = (1..=2000).map(Some).collect();
        want.push(None);
        assert_eq!(lines, want);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
