//! The table's two formats: CSV (with a header row) and JSONL (one object a row). Written
//! to a temporary file and renamed into place, so a table is whole or absent.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::{Value, json};

use super::row::Row;

/// The format a table is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Jsonl,
}

impl Format {
    /// The format a file's extension names.
    pub fn of(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "csv" => Some(Format::Csv),
            "jsonl" | "ndjson" => Some(Format::Jsonl),
            _ => None,
        }
    }
}

const COLUMNS: [&str; 13] = [
    "line",
    "custom_id",
    "status",
    "text",
    "finish_reason",
    "model",
    "prompt_tokens",
    "cached_tokens",
    "completion_tokens",
    "cost_usd",
    "error_code",
    "error_message",
    "input",
];

enum Sink {
    Csv(Box<csv::Writer<BufWriter<File>>>),
    Jsonl(BufWriter<File>),
}

/// Writes rows.
pub struct RowWriter {
    sink: Sink,
    with_input: bool,
    tmp: PathBuf,
    to: PathBuf,
}

impl RowWriter {
    pub fn create(to: &Path, format: Format, with_input: bool, dir: &Path) -> anyhow::Result<Self> {
        let tmp = dir.join("table.tmp");
        let file =
            File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        let out = BufWriter::with_capacity(1 << 20, file);
        let sink = match format {
            Format::Csv => {
                let mut w = csv::Writer::from_writer(out);
                let columns = if with_input {
                    &COLUMNS[..]
                } else {
                    &COLUMNS[..COLUMNS.len() - 1]
                };
                w.write_record(columns)?;
                Sink::Csv(Box::new(w))
            }
            Format::Jsonl => Sink::Jsonl(out),
        };
        Ok(RowWriter {
            sink,
            with_input,
            tmp,
            to: to.to_owned(),
        })
    }

    /// A result's row.
    pub fn row(&mut self, row: &Row, prompt: Option<&str>) -> std::io::Result<()> {
        let status = if row.failed { "failed" } else { "ok" };
        match &mut self.sink {
            Sink::Csv(w) => {
                let n = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
                let s = |v: &Option<String>| v.clone().unwrap_or_default();
                let mut record = vec![
                    n(row.line),
                    s(&row.custom_id),
                    status.to_owned(),
                    row.text
                        .clone()
                        .or_else(|| row.embedding.clone())
                        .unwrap_or_default(),
                    s(&row.finish_reason),
                    s(&row.model),
                    n(row.prompt_tokens),
                    n(row.cached_tokens),
                    n(row.completion_tokens),
                    row.cost_usd.map(|c| format!("{c:.8}")).unwrap_or_default(),
                    s(&row.error_code),
                    s(&row.error_message),
                ];
                if self.with_input {
                    record.push(prompt.unwrap_or_default().to_owned());
                }
                w.write_record(&record).map_err(std::io::Error::other)
            }
            Sink::Jsonl(w) => {
                let mut v = json!({
                    "line": row.line,
                    "custom_id": row.custom_id,
                    "status": status,
                    "text": row.text,
                    "finish_reason": row.finish_reason,
                    "model": row.model,
                    "prompt_tokens": row.prompt_tokens,
                    "cached_tokens": row.cached_tokens,
                    "completion_tokens": row.completion_tokens,
                    "cost_usd": row.cost_usd,
                    "error_code": row.error_code,
                    "error_message": row.error_message,
                });
                if let Some(e) = &row.embedding {
                    v["embedding"] = serde_json::from_str(e).unwrap_or(Value::Null);
                }
                if self.with_input {
                    v["input"] = json!(prompt);
                }
                serde_json::to_writer(&mut *w, &v)?;
                w.write_all(b"\n")
            }
        }
    }

    /// A row for an input line without a result yet.
    pub fn pending(&mut self, line: u64, prompt: &str) -> std::io::Result<()> {
        match &mut self.sink {
            Sink::Csv(w) => {
                let mut record = vec![String::new(); COLUMNS.len()];
                record[0] = line.to_string();
                record[2] = "pending".to_owned();
                record[COLUMNS.len() - 1] = prompt.to_owned();
                w.write_record(&record).map_err(std::io::Error::other)
            }
            Sink::Jsonl(w) => {
                serde_json::to_writer(
                    &mut *w,
                    &json!({"line": line, "status": "pending", "input": prompt}),
                )?;
                w.write_all(b"\n")
            }
        }
    }

    /// Flushes the table and moves it into place.
    pub fn finish(self) -> anyhow::Result<()> {
        let file = match self.sink {
            Sink::Csv(w) => w
                .into_inner()
                .map_err(|e| anyhow::anyhow!("{}", e.error()))?,
            Sink::Jsonl(w) => w,
        };
        file.into_inner()
            .map_err(|e| e.into_error())?
            .sync_all()
            .with_context(|| format!("cannot write {}", self.tmp.display()))?;
        std::fs::rename(&self.tmp, &self.to)
            .with_context(|| format!("cannot write {}", self.to.display()))?;
        Ok(())
    }
}
