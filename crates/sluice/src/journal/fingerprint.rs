//! A fingerprint of an input file: its size and a hash of sampled blocks (the first and
//! last MiB and 62 blocks of 4 KiB spread between). Reading ~2 MiB of a 1 GB file takes
//! milliseconds and catches edits, truncations, appends and a different file of the same
//! size; an edit that changes no byte of any sample keeps the size and goes unseen, which
//! is the price of not hashing the whole file at every start.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use serde::{Deserialize, Serialize};

const EDGE: u64 = 1 << 20;
const BLOCK: u64 = 4096;
const SAMPLES: u64 = 62;

/// Size and sampled-content hash of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// Bytes.
    pub size: u64,
    /// FNV-1a of the sampled blocks, in hex in the state file.
    #[serde(with = "hex_u64")]
    pub sample_hash: u64,
}

impl Fingerprint {
    /// Fingerprints the file at `path`.
    pub fn of(path: &Path) -> io::Result<Self> {
        let mut f = File::open(path)?;
        let size = f.metadata()?.len();
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        let mut feed = |bytes: &[u8]| {
            for &b in bytes {
                hash ^= u64::from(b);
                hash = hash.wrapping_mul(0x0100_0000_01b3);
            }
        };
        let mut buf = vec![0u8; EDGE as usize];
        let read_at = |f: &mut File, at: u64, len: u64, buf: &mut Vec<u8>| -> io::Result<usize> {
            f.seek(SeekFrom::Start(at))?;
            buf.resize(len as usize, 0);
            let mut filled = 0;
            while filled < buf.len() {
                let n = f.read(&mut buf[filled..])?;
                if n == 0 {
                    break;
                }
                filled += n;
            }
            Ok(filled)
        };
        let n = read_at(&mut f, 0, EDGE.min(size), &mut buf)?;
        feed(&buf[..n]);
        if size > 2 * EDGE {
            let span = size - 2 * EDGE;
            for i in 0..SAMPLES {
                let at = EDGE + span * i / SAMPLES;
                let n = read_at(&mut f, at, BLOCK.min(size - at), &mut buf)?;
                feed(&buf[..n]);
            }
        }
        if size > EDGE {
            let at = size.saturating_sub(EDGE).max(EDGE);
            let n = read_at(&mut f, at, size - at, &mut buf)?;
            feed(&buf[..n]);
        }
        Ok(Fingerprint {
            size,
            sample_hash: hash,
        })
    }
}

mod hex_u64 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{v:016x}"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let s = String::deserialize(d)?;
        u64::from_str_radix(&s, 16).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sees_edits_appends_and_truncations() {
        let dir = std::env::temp_dir().join(format!("sluice-fp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("in.jsonl");
        let content: Vec<u8> = (0..3_000_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        std::fs::write(&p, &content).unwrap();
        let base = Fingerprint::of(&p).unwrap();
        assert_eq!(base, Fingerprint::of(&p).unwrap());
        let mut edited = content.clone();
        edited[10] = b'!';
        std::fs::write(&p, &edited).unwrap();
        assert_ne!(Fingerprint::of(&p).unwrap(), base);
        let mut tail_edit = content.clone();
        *tail_edit.last_mut().unwrap() = b'!';
        std::fs::write(&p, &tail_edit).unwrap();
        assert_ne!(Fingerprint::of(&p).unwrap(), base);
        std::fs::write(&p, &content[..content.len() - 1]).unwrap();
        assert_ne!(Fingerprint::of(&p).unwrap(), base);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
