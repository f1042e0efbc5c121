//! Reading back what a previous run wrote: repairs a torn last line, then collects the
//! input line number and `custom_id` of every record.
//!
//! Records written by sluice begin `{"id":"…","custom_id":…,"line":N,`, so the scan reads
//! only that prefix of each line; other lines fall back to a full parse.

use std::fs::OpenOptions;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde::Deserialize;

/// One record's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordId {
    /// The `custom_id`, if the record has one.
    pub custom_id: Option<String>,
    /// The input line, if the record says.
    pub line: Option<u64>,
    /// The `error.code`, for records of failures (`None` for successes and when unknown).
    pub error_code: Option<String>,
    /// The usage the response reported, for records of successes that have one.
    pub billed: Option<Billed>,
}

/// What a success record says it used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Billed {
    /// The model the server named.
    pub model: Option<String>,
    /// Its usage.
    pub usage: crate::Usage,
}

/// What a scan found besides the records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanReport {
    /// Bytes at the end after the last newline: a record torn by a crash mid-write.
    pub torn_bytes: u64,
    /// Lines that are not whole records (a block of NUL bytes after a power loss, a line
    /// cut short inside the file, anything not one JSON object): never trusted.
    pub unreadable: u64,
    /// Records the caller turned down (a second record for one input line, say).
    pub rejected: u64,
    /// Byte ranges of the lines to remove, in file order.
    drop: Vec<(u64, u64)>,
}

impl ScanReport {
    /// Whether [`repair`] would change the file.
    pub fn needs_repair(&self) -> bool {
        self.torn_bytes > 0 || !self.drop.is_empty()
    }
}

/// Truncates `path` after its last newline, so a record torn by a crash disappears.
/// Returns the bytes removed. A missing file is fine (nothing was written).
pub fn repair_torn_tail(path: &Path) -> io::Result<u64> {
    let mut file = match OpenOptions::new().read(true).write(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len();
    let mut keep = len;
    let mut buf = vec![0u8; 64 * 1024];
    while keep > 0 {
        let start = keep.saturating_sub(buf.len() as u64);
        let chunk = &mut buf[..(keep - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(chunk)?;
        if let Some(i) = chunk.iter().rposition(|&b| b == b'\n') {
            keep = start + i as u64 + 1;
            break;
        }
        keep = start;
    }
    if keep < len {
        file.set_len(keep)?;
        file.sync_all()?;
    }
    Ok(len - keep)
}

/// Bytes read at once by [`scan`]: lines are checked in place, in blocks this size.
const BLOCK: usize = 8 << 20;

/// Reads every whole line of `path` without changing it. Each line that is a record is
/// passed to `each`, in file order, which returns whether to keep it; lines that are not
/// records are counted as unreadable. Both kinds are noted for [`repair`], as is a torn
/// tail.
///
/// A resume reads hundreds of MB here before its first request, and checking that each
/// line is whole JSON is most of the work: each block's lines are checked on two threads
/// (the second half on a scoped thread), then handed to `each` in order.
pub fn scan(path: &Path, mut each: impl FnMut(RecordId) -> bool) -> io::Result<ScanReport> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(ScanReport::default()),
        Err(e) => return Err(e),
    };
    let mut report = ScanReport::default();
    // buf[..valid] holds what was read and not yet handled; the buffer is zeroed once and
    // only grows for a line longer than it.
    let mut buf: Vec<u8> = vec![0; BLOCK];
    let mut valid = 0;
    // File offset of buf[0].
    let mut pos: u64 = 0;
    let mut ends: Vec<usize> = Vec::new();
    loop {
        if valid == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        let before = valid;
        while valid < buf.len() {
            match file.read(&mut buf[valid..]) {
                Ok(0) => break,
                Ok(n) => valid += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let at_end = valid == before;
        let Some(last) = memchr::memrchr(b'\n', &buf[..valid]) else {
            if at_end {
                break;
            }
            continue;
        };
        let whole = &buf[..=last];
        ends.clear();
        ends.extend(memchr::memchr_iter(b'\n', whole));
        let checks = check_lines(whole, &ends);
        let mut start = 0;
        for (&end, id) in ends.iter().zip(checks) {
            let line_at = pos + start as u64;
            let keep = match id {
                Some(id) => {
                    let keep = each(id);
                    report.rejected += u64::from(!keep);
                    keep
                }
                None => {
                    report.unreadable += 1;
                    false
                }
            };
            if !keep {
                let line_end = pos + end as u64 + 1;
                match report.drop.last_mut() {
                    Some(l) if l.1 == line_at => l.1 = line_end,
                    _ => report.drop.push((line_at, line_end)),
                }
            }
            start = end + 1;
        }
        buf.copy_within(last + 1..valid, 0);
        valid -= last + 1;
        pos += last as u64 + 1;
        if at_end {
            break;
        }
    }
    report.torn_bytes = valid as u64;
    Ok(report)
}

/// [`checked`] of each line of `block` (ending at the offsets `ends`), the second half on
/// another thread.
fn check_lines(block: &[u8], ends: &[usize]) -> Vec<Option<RecordId>> {
    let line = |i: usize| {
        let start = if i == 0 { 0 } else { ends[i - 1] + 1 };
        &block[start..=ends[i]]
    };
    let half = ends.len() / 2;
    if half < 64 {
        return (0..ends.len()).map(|i| checked(line(i))).collect();
    }
    std::thread::scope(|s| {
        let second = s.spawn(|| {
            (half..ends.len())
                .map(|i| checked(line(i)))
                .collect::<Vec<_>>()
        });
        let mut out: Vec<Option<RecordId>> = (0..half).map(|i| checked(line(i))).collect();
        // A panic in checking is a bug; it is passed on as it is.
        out.extend(
            second
                .join()
                .unwrap_or_else(|e| std::panic::resume_unwind(e)),
        );
        out
    })
}

/// Makes `path` hold only what [`scan`] kept: cuts a torn tail in place, and rewrites the
/// file without dropped lines (write a copy, fsync, rename over, fsync the directory), so
/// a crash during the repair leaves the old file or the new one.
pub fn repair(path: &Path, report: &ScanReport) -> io::Result<()> {
    if report.drop.is_empty() {
        if report.torn_bytes > 0 {
            repair_torn_tail(path)?;
        }
        return Ok(());
    }
    let mut input = BufReader::with_capacity(1 << 20, std::fs::File::open(path)?);
    let end = input.get_ref().metadata()?.len() - report.torn_bytes;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    {
        let out = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        let mut out = io::BufWriter::with_capacity(1 << 20, out);
        let mut at = 0u64;
        for &(from, to) in report.drop.iter().chain(std::iter::once(&(end, end))) {
            io::copy(&mut (&mut input).take(from - at), &mut out)?;
            io::copy(&mut (&mut input).take(to - from), &mut io::sink())?;
            at = to;
        }
        out.into_inner()
            .map_err(io::IntoInnerError::into_error)?
            .sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    super::sync_dir(path)
}

/// The identity of a line if it is a whole record: one valid JSON object on one line.
/// The identity comes from the prefix sluice writes; the rest of the line is validated
/// too (about 1.4 GB/s), because damage inside a record (a block of NULs after a power
/// loss, bytes from a crashed writer) leaves its prefix intact.
fn checked(line: &[u8]) -> Option<RecordId> {
    let trimmed = line.trim_ascii();
    if !trimmed.starts_with(b"{") || !trimmed.ends_with(b"}") {
        return None;
    }
    let mut id = identify(trimmed)?;
    serde_json::from_slice::<serde::de::IgnoredAny>(trimmed).ok()?;
    if id.error_code.is_none() {
        id.billed = crate::outcome::find_usage(trimmed).map(|r| Billed {
            model: r.model.map(std::borrow::Cow::into_owned),
            usage: r.usage,
        });
    }
    Some(id)
}

/// The identity of one record line, from its prefix when sluice wrote it, else from a
/// full parse.
pub fn identify(line: &[u8]) -> Option<RecordId> {
    read_prefix(line).or_else(|| read_full(line))
}

/// Parses `{"id":"…","custom_id":<string|null>,"line":N,` and, for failures, finds the
/// error code near the end of the line.
fn read_prefix(line: &[u8]) -> Option<RecordId> {
    let rest = line.strip_prefix(b"{\"id\":\"")?;
    let end = rest.iter().position(|&b| b == b'"')?;
    let rest = rest[end + 1..].strip_prefix(b",\"custom_id\":")?;
    let (custom_id, rest) = if let Some(r) = rest.strip_prefix(b"null") {
        (None, r)
    } else {
        // `rest` starts at the opening quote; find the closing one, skipping escapes.
        let body = rest.strip_prefix(b"\"")?;
        let mut i = 0;
        while *body.get(i)? != b'"' {
            i += if body[i] == b'\\' { 2 } else { 1 };
        }
        let raw = &body[..i];
        let id = if raw.contains(&b'\\') {
            serde_json::from_slice::<String>(&rest[..i + 2]).ok()?
        } else {
            String::from_utf8(raw.to_vec()).ok()?
        };
        (Some(id), &body[i + 1..])
    };
    let rest = rest.strip_prefix(b",\"line\":")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    let line_no = std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()?;
    Some(RecordId {
        custom_id,
        line: Some(line_no),
        error_code: error_code(line),
        billed: None,
    })
}

/// The `error.code` of a failure record, which the writer puts last: `…"error":{"code":"X",`.
fn error_code(line: &[u8]) -> Option<String> {
    const KEY: &[u8] = b"\"error\":{\"code\":\"";
    if line.trim_ascii_end().ends_with(b",\"error\":null}") {
        return None;
    }
    let at = line.windows(KEY.len()).rposition(|w| w == KEY)?;
    let rest = &line[at + KEY.len()..];
    let end = rest.iter().position(|&b| b == b'"')?;
    String::from_utf8(rest[..end].to_vec()).ok()
}

#[derive(Deserialize)]
struct Full {
    custom_id: Option<String>,
    line: Option<u64>,
    error: Option<FullError>,
}

#[derive(Deserialize)]
struct FullError {
    code: Option<String>,
}

fn read_full(line: &[u8]) -> Option<RecordId> {
    let f: Full = serde_json::from_slice(line).ok()?;
    Some(RecordId {
        custom_id: f.custom_id,
        line: f.line,
        error_code: f.error.and_then(|e| e.code),
        billed: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str, content: &[u8]) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("sluice-recover-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("out.jsonl");
        std::fs::write(&p, content).unwrap();
        p
    }

    #[test]
    fn reads_prefixes_escapes_nulls_and_error_codes() {
        let content = concat!(
            r#"{"id":"b1","custom_id":"a","line":3,"response":{"status_code":200,"request_id":null,"body":{"error":{"code":"x"}}},"error":null}"#,
            "\n",
            r#"{"id":"b2","custom_id":"q\"uote","line":4,"response":null,"error":{"code":"timeout","message":"m"}}"#,
            "\n",
            r#"{"id":"b3","custom_id":null,"line":5,"response":null,"error":{"code":"invalid_input","message":"m"}}"#,
            "\n",
            r#"{"custom_id":"foreign","line":6,"error":null}"#,
            "\n",
        );
        let p = temp("prefix", content.as_bytes());
        let mut got = Vec::new();
        let report = scan(&p, |r| {
            got.push(r);
            true
        })
        .unwrap();
        assert_eq!(report, ScanReport::default());
        assert_eq!(
            got[0],
            RecordId {
                custom_id: Some("a".into()),
                line: Some(3),
                error_code: None,
                billed: None,
            }
        );
        assert_eq!(got[1].custom_id.as_deref(), Some("q\"uote"));
        assert_eq!(got[1].error_code.as_deref(), Some("timeout"));
        assert_eq!(
            got[2],
            RecordId {
                custom_id: None,
                line: Some(5),
                error_code: Some("invalid_input".into()),
                billed: None,
            }
        );
        assert_eq!(got[3].custom_id.as_deref(), Some("foreign"));
    }

    #[test]
    fn lines_straddling_buffer_fills_are_read_whole() {
        let pad = "x".repeat(1000);
        let content: String = (0..3000)
            .map(|i| format!("{{\"id\":\"b\",\"custom_id\":\"c{i}\",\"line\":{i},\"response\":\"{pad}\",\"error\":null}}\n"))
            .collect();
        let p = temp("straddle", content.as_bytes());
        let mut lines = Vec::new();
        scan(&p, |r| {
            lines.push(r.line.unwrap());
            true
        })
        .unwrap();
        assert_eq!(lines, (0..3000).collect::<Vec<u64>>());
    }

    #[test]
    fn a_torn_last_line_is_cut_off() {
        let p = temp("torn", b"{\"id\":\"b\",\"custom_id\":\"a\",\"line\":1,\"error\":null}\n{\"id\":\"b\",\"custom_id\":\"b\",\"li");
        let mut n = 0;
        let report = scan(&p, |_| {
            n += 1;
            true
        })
        .unwrap();
        assert_eq!(n, 1);
        assert_eq!(report.torn_bytes, 29);
        repair(&p, &report).unwrap();
        assert!(std::fs::read(&p).unwrap().ends_with(b"}\n"));
        assert_eq!(repair_torn_tail(&p.with_file_name("absent")).unwrap(), 0);
    }

    fn record(line: u64) -> String {
        format!(
            "{{\"id\":\"b\",\"custom_id\":\"c{line}\",\"line\":{line},\"response\":{{\"body\":\"{}\"}},\"error\":null}}\n",
            "x".repeat(50)
        )
    }

    #[test]
    fn nul_blocks_cut_records_and_rejected_duplicates_are_removed_by_repair() {
        let mut content = Vec::new();
        content.extend_from_slice(record(1).as_bytes());
        // A power loss: a block of NULs where records were, running into the next one.
        content.extend_from_slice(&[0u8; 300]);
        content.extend_from_slice(&record(2).as_bytes()[20..]);
        content.extend_from_slice(record(3).as_bytes());
        // A record cut short inside the file (no closing brace) and a NUL inside a body.
        content.extend_from_slice(&record(4).as_bytes()[..40]);
        content.push(b'\n');
        let mut with_nul = record(5).into_bytes();
        with_nul[60] = 0;
        content.extend_from_slice(&with_nul);
        content.extend_from_slice(record(3).as_bytes()); // a second record for line 3
        content.extend_from_slice(record(6).as_bytes());
        let torn = b"{\"id\":\"b\",\"cus";
        content.extend_from_slice(torn); // torn tail
        let p = temp("nul", &content);
        let mut seen = std::collections::BTreeSet::new();
        let report = scan(&p, |r| seen.insert(r.line.unwrap())).unwrap();
        assert_eq!(report.unreadable, 3);
        assert_eq!(report.rejected, 1);
        assert_eq!(report.torn_bytes, torn.len() as u64);
        let before = std::fs::read(&p).unwrap();
        assert_eq!(before, content, "a scan changes nothing");
        repair(&p, &report).unwrap();
        let after = std::fs::read_to_string(&p).unwrap();
        assert_eq!(after, [1, 3, 6].map(record).concat());
        let again = scan(&p, |_| true).unwrap();
        assert!(!again.needs_repair());
    }
}
