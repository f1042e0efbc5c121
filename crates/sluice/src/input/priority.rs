//! Priority across a whole file, in bounded memory.
//!
//! A first pass over a regular file finds the lines that carry a non-zero `priority` and
//! appends their `(line, offset, length)` to one spool file per priority value, on disk.
//! The reader then serves the positive classes first (highest first, file order within a
//! class, each line read back by its offset), then the file in order without those lines,
//! then the negative classes. Memory holds one bit a line for "served from a spool" and
//! the spools' file handles, whatever the file's size.
//!
//! More than [`MAX_CLASSES`] distinct priorities fall back to ordering within the
//! read-ahead window only.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use super::parse::parse_priority;
use crate::journal::LineSet;

/// The most distinct priority values spooled.
pub const MAX_CLASSES: usize = 16;

/// One spooled line: where it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Spooled {
    pub line: u64,
    pub offset: u64,
    pub len: u32,
}

/// The lines of one priority value, in file order, on disk.
#[derive(Debug)]
struct Class {
    priority: i32,
    spool: File,
    count: u64,
}

/// What the first pass found.
#[derive(Debug)]
pub(crate) struct PriorityPlan {
    /// Highest priority first.
    classes: Vec<Class>,
    /// Lines served from a spool, to pass over in the in-order read.
    pub spooled: LineSet,
    input: File,
    /// The class being served and the reader over its spool.
    current: Option<(usize, BufReader<File>)>,
    next_class: usize,
}

#[derive(Deserialize)]
struct PriorityOnly {
    priority: Option<Value>,
}

/// An anonymous temporary file (unlinked at once; it lives as long as its handle).
fn anonymous_file() -> io::Result<File> {
    let dir = std::env::temp_dir();
    for attempt in 0..100u32 {
        let path = dir.join(format!("sluice-priority-{}-{attempt}", std::process::id()));
        match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(f) => {
                let _ = std::fs::remove_file(&path);
                return Ok(f);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other(
        "cannot create a temporary file for the priority spool",
    ))
}

impl PriorityPlan {
    /// Scans `path`; `None` when no line has a non-zero priority (or there are too many
    /// distinct ones). Also notes where lines start, every buffer or so, in `marks`:
    /// `(lines before, byte offset)`, so that a resume can start reading at the first line
    /// without a record instead of reading past every line done.
    pub(crate) fn scan(
        path: &Path,
        max_line_bytes: usize,
        marks: &mut Vec<(u64, u64)>,
    ) -> io::Result<Option<Self>> {
        let input = File::open(path)?;
        let mut reader = BufReader::with_capacity(1 << 20, input.try_clone()?);
        let mut classes: Vec<Class> = Vec::new();
        let mut spooled = LineSet::default();
        // Most files have no priorities: search whole buffers for the key and only look at
        // the lines it appears in, counting newlines to know their numbers.
        let finder = memchr::memmem::Finder::new(b"\"priority\"");
        let (mut lines_before, mut consumed) = (0u64, 0u64);
        let mut carry: Vec<u8> = Vec::new();
        let mut found: Vec<(u64, u64, Vec<u8>)> = Vec::new();
        // Inside a line longer than the limit: its bytes are passed over, not kept (the
        // reader reports it as too long), so memory stays bounded by the limit.
        let mut skipping = false;
        let mut read_pos = 0u64;
        loop {
            let chunk = reader.fill_buf()?;
            if chunk.is_empty() {
                break;
            }
            let len = chunk.len();
            let mut from = 0;
            if skipping {
                match memchr::memchr(b'\n', chunk) {
                    None => {
                        reader.consume(len);
                        read_pos += len as u64;
                        continue;
                    }
                    Some(i) => {
                        skipping = false;
                        lines_before += 1;
                        from = i + 1;
                        consumed = read_pos + from as u64;
                    }
                }
            }
            let rest = &chunk[from..];
            // Work on whole lines: keep the tail after the last newline for the next round.
            let Some(last_nl) = memchr::memrchr(b'\n', rest) else {
                carry.extend_from_slice(rest);
                if carry.len() > max_line_bytes {
                    carry = Vec::new();
                    skipping = true;
                }
                reader.consume(len);
                read_pos += len as u64;
                continue;
            };
            let mut block = std::mem::take(&mut carry);
            block.extend_from_slice(&rest[..=last_nl]);
            carry.extend_from_slice(&rest[last_nl + 1..]);
            reader.consume(len);
            read_pos += len as u64;
            let block_start = consumed;
            marks.push((lines_before, block_start));
            let mut counted_to = 0usize;
            let mut line_at = lines_before;
            for hit in finder.find_iter(&block) {
                let start = memchr::memrchr(b'\n', &block[..hit]).map_or(0, |i| i + 1);
                if start < counted_to {
                    continue; // a second hit in a line already taken
                }
                line_at += memchr::memchr_iter(b'\n', &block[counted_to..start]).count() as u64;
                let end = memchr::memchr(b'\n', &block[hit..]).map_or(block.len(), |i| hit + i + 1);
                found.push((
                    line_at + 1,
                    block_start + start as u64,
                    block[start..end].to_vec(),
                ));
                counted_to = end;
                line_at += 1;
            }
            lines_before =
                line_at + memchr::memchr_iter(b'\n', &block[counted_to..]).count() as u64;
            consumed += block.len() as u64;
            if carry.len() > max_line_bytes {
                carry = Vec::new();
                skipping = true;
            }
            Self::spool(&mut found, &mut classes, &mut spooled)?;
            if classes.len() > MAX_CLASSES {
                return Ok(None);
            }
        }
        if !carry.is_empty() && !skipping {
            if finder.find(&carry).is_some() {
                found.push((lines_before + 1, consumed, carry.clone()));
            }
            Self::spool(&mut found, &mut classes, &mut spooled)?;
        }
        if classes.is_empty() || classes.len() > MAX_CLASSES {
            return Ok(None);
        }
        classes.sort_by_key(|c| std::cmp::Reverse(c.priority));
        Ok(Some(PriorityPlan {
            classes,
            spooled,
            input,
            current: None,
            next_class: 0,
        }))
    }

    /// Appends the lines found with a non-zero priority to their classes' spools.
    fn spool(
        found: &mut Vec<(u64, u64, Vec<u8>)>,
        classes: &mut Vec<Class>,
        spooled: &mut LineSet,
    ) -> io::Result<()> {
        for (line, offset, bytes) in found.drain(..) {
            let n = bytes.len();
            if let Ok(PriorityOnly { priority: Some(v) }) =
                serde_json::from_slice::<PriorityOnly>(bytes.trim_ascii_end())
                && let Some(p) = parse_priority(&v)
                && p != 0
            {
                let class = match classes.iter().position(|c| c.priority == p) {
                    Some(i) => &mut classes[i],
                    None => {
                        classes.push(Class {
                            priority: p,
                            spool: anonymous_file()?,
                            count: 0,
                        });
                        if classes.len() > MAX_CLASSES {
                            return Ok(()); // the caller gives up on spooling
                        }
                        classes.last_mut().expect("just pushed")
                    }
                };
                let mut entry = [0u8; 20];
                entry[..8].copy_from_slice(&line.to_le_bytes());
                entry[8..16].copy_from_slice(&offset.to_le_bytes());
                entry[16..].copy_from_slice(&(n as u32).to_le_bytes());
                class.spool.write_all(&entry)?;
                class.count += 1;
                spooled.insert(line);
            }
        }
        Ok(())
    }

    /// The next spooled line of the classes above (`positive`) or below zero, as its line
    /// number and bytes (line ending included); `None` when those classes are exhausted.
    pub(crate) fn next(&mut self, positive: bool) -> io::Result<Option<(u64, Vec<u8>)>> {
        loop {
            if self.current.is_none() {
                let Some(class) = self.classes.get(self.next_class) else {
                    return Ok(None);
                };
                if (class.priority > 0) != positive {
                    return Ok(None);
                }
                let mut spool = class.spool.try_clone()?;
                spool.seek(SeekFrom::Start(0))?;
                self.current = Some((self.next_class, BufReader::new(spool)));
                self.next_class += 1;
            }
            let (_, reader) = self.current.as_mut().expect("set above");
            let mut entry = [0u8; 20];
            match reader.read_exact(&mut entry) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    self.current = None;
                    continue;
                }
                Err(e) => return Err(e),
            }
            let s = Spooled {
                line: u64::from_le_bytes(entry[..8].try_into().expect("8 bytes")),
                offset: u64::from_le_bytes(entry[8..16].try_into().expect("8 bytes")),
                len: u32::from_le_bytes(entry[16..].try_into().expect("4 bytes")),
            };
            let mut bytes = vec![0u8; s.len as usize];
            self.input.read_exact_at(&mut bytes, s.offset)?;
            return Ok(Some((s.line, bytes)));
        }
    }

    /// Whether any class is negative (served after the in-order read).
    pub(crate) fn has_negative(&self) -> bool {
        self.classes.iter().any(|c| c.priority < 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spools_by_class_and_serves_high_then_low_in_file_order() {
        let dir = std::env::temp_dir().join(format!("sluice-prio-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("in.jsonl");
        let lines = [
            r#"{"custom_id":"n1"}"#,
            r#"{"custom_id":"l1","priority":"low"}"#,
            r#"{"custom_id":"h1","priority":"high"}"#,
            r#"{"custom_id":"u1","priority":20}"#,
            r#"{"custom_id":"h2","priority":10}"#,
            r#"{"custom_id":"n2","priority":0}"#,
        ];
        std::fs::write(&p, lines.join("\n") + "\n").unwrap();
        let mut plan = PriorityPlan::scan(&p, 1 << 20, &mut Vec::new())
            .unwrap()
            .unwrap();
        let mut high = Vec::new();
        while let Some((line, bytes)) = plan.next(true).unwrap() {
            high.push((line, String::from_utf8(bytes).unwrap().trim().to_owned()));
        }
        assert_eq!(
            high.iter().map(|(l, _)| *l).collect::<Vec<_>>(),
            vec![4, 3, 5]
        );
        assert_eq!(high[0].1, lines[3]);
        assert!(plan.has_negative());
        let (line, _) = plan.next(false).unwrap().unwrap();
        assert_eq!(line, 2);
        assert!(plan.next(false).unwrap().is_none());
        assert!(plan.spooled.contains(3) && !plan.spooled.contains(1) && !plan.spooled.contains(6));
        let plain = dir.join("plain.jsonl");
        // Three buffers' worth of lines: the marks are line starts with their counts.
        let text: String = (0..60_000)
            .map(|i| format!("{{\"custom_id\":\"line-{i}\"}}\n"))
            .collect();
        std::fs::write(&plain, &text).unwrap();
        let mut marks = Vec::new();
        assert!(
            PriorityPlan::scan(&plain, 1 << 20, &mut marks)
                .unwrap()
                .is_none()
        );
        assert!(marks.len() >= 2, "{marks:?}");
        for (before, offset) in marks {
            let at = offset as usize;
            assert!(at == 0 || text.as_bytes()[at - 1] == b'\n');
            assert_eq!(text[..at].matches('\n').count() as u64, before);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_line_over_the_limit_is_passed_over_and_later_lines_keep_their_numbers() {
        let dir = std::env::temp_dir().join(format!("sluice-prio-long-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("in.jsonl");
        let mut content = b"{\"custom_id\":\"a\",\"priority\":5}\n".to_vec();
        // Longer than the limit and than one read buffer, with a priority in it.
        content.extend_from_slice(b"{\"priority\":9,\"x\":\"");
        content.extend(std::iter::repeat_n(b'x', 3 << 20));
        content.extend_from_slice(b"\"}\n");
        content.extend_from_slice(b"{\"custom_id\":\"c\",\"priority\":5}\n");
        std::fs::write(&p, &content).unwrap();
        let mut plan = PriorityPlan::scan(&p, 1024, &mut Vec::new())
            .unwrap()
            .unwrap();
        let mut lines = Vec::new();
        while let Some((line, bytes)) = plan.next(true).unwrap() {
            assert!(bytes.len() < 100);
            lines.push(line);
        }
        assert_eq!(lines, vec![1, 3]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
