//! Counting an input's lines without holding it: for `status` and for the progress total.

use std::io::Read;

/// Lines in a file (a last line without a newline counts), or `None` for stdin or an
/// unreadable file. Reads in blocks: the input may be gigabytes.
pub fn count_lines(path: &str) -> Option<u64> {
    if path == "-" {
        return None;
    }
    let mut file = std::fs::File::open(path).ok()?;
    let mut buf = vec![0u8; 1 << 20];
    let (mut newlines, mut last) = (0u64, b'\n');
    loop {
        let n = file.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        newlines += memchr::memchr_iter(b'\n', &buf[..n]).count() as u64;
        last = buf[n - 1];
    }
    Some(newlines + u64::from(last != b'\n'))
}
