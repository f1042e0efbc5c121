//! `custom_id`s seen, to report duplicates without holding the input.
//!
//! Each id is kept as a 64-bit hash: its top 16 bits choose one of 65,536 small sorted
//! vectors, and only the other 48 bits are stored there, as 6 bytes. So the set costs
//! about 7 bytes an id (a `HashSet<u64>` costs about 18, a vector of 64-bit hashes 8 plus
//! its growth) while telling ids apart as well as a full 64-bit hash: a false duplicate
//! needs a 64-bit collision, for a million ids a chance of about 3 in 100 million.
//!
//! The vectors stay small (15 entries at a million ids), so an insert moves a few dozen
//! bytes, a lookup bisects within one cache line or two, and growing one reallocates a
//! block of tens of bytes: the allocator reuses the blocks the other vectors just left,
//! where large vectors growing in steps would leave freed blocks it cannot reuse and the
//! resident memory would grow with them.

use std::hash::{BuildHasher, RandomState};

/// log2 of the number of partitions: the hash bits not stored.
const PARTITION_BITS: u32 = 16;

/// The stored part of a hash: its low 48 bits, big-endian, so that byte order is numeric
/// order.
type Key = [u8; 6];

/// A hash's partition (its top bits) and the key stored there (the rest).
fn split(h: u64) -> (usize, Key) {
    let b = h.to_be_bytes();
    (
        (h >> (64 - PARTITION_BITS)) as usize,
        [b[2], b[3], b[4], b[5], b[6], b[7]],
    )
}

/// A set of ids, as hashes. See the module docs.
#[derive(Debug)]
pub struct IdSet {
    partitions: Vec<Vec<Key>>,
    len: usize,
    hasher: RandomState,
}

impl Default for IdSet {
    fn default() -> Self {
        IdSet {
            partitions: vec![Vec::new(); 1 << PARTITION_BITS],
            len: 0,
            hasher: RandomState::new(),
        }
    }
}

impl IdSet {
    /// Adds `id`; false if it was seen already.
    pub fn insert(&mut self, id: &str) -> bool {
        let (index, key) = split(self.hasher.hash_one(id));
        let part = &mut self.partitions[index];
        match part.binary_search(&key) {
            Ok(_) => false,
            Err(at) => {
                if part.len() == part.capacity() {
                    part.reserve_exact((part.len() / 4).max(4));
                }
                part.insert(at, key);
                self.len += 1;
                true
            }
        }
    }

    /// Ids seen.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes held, vectors' spare room included (not the allocator's own overhead).
    pub fn heap_bytes(&self) -> usize {
        self.partitions.capacity() * size_of::<Vec<Key>>()
            + self
                .partitions
                .iter()
                .map(|p| p.capacity() * size_of::<Key>())
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_duplicates_among_many() {
        let mut s = IdSet::default();
        let n = 1_000_000;
        for i in 0..n {
            assert!(s.insert(&format!("id-{i}")), "{i} is new");
        }
        assert_eq!(s.len(), n);
        assert!(
            s.partitions
                .iter()
                .all(|p| p.windows(2).all(|w| w[0] < w[1])),
            "sorted, no repeats"
        );
        for i in (0..n).step_by(997) {
            assert!(!s.insert(&format!("id-{i}")), "{i} seen");
        }
        assert!(s.insert("another"));
        assert!(!s.insert("another"));
        assert_eq!(s.len(), n + 1);
        let per_id = s.heap_bytes() as f64 / n as f64;
        eprintln!("{per_id:.2} bytes an id");
        assert!(per_id < 8.5, "{per_id:.2} bytes an id");
    }

    #[test]
    fn a_hash_is_split_without_loss_and_keys_sort_as_their_numbers() {
        let samples = [
            0u64,
            1,
            0xffff,
            0x1_0000_0000_0000,
            u64::MAX,
            0x0123_4567_89ab_cdef,
        ];
        for &a in &samples {
            let (pa, ka) = split(a);
            let mut joined = [0u8; 8];
            joined[..2].copy_from_slice(&(pa as u16).to_be_bytes());
            joined[2..].copy_from_slice(&ka);
            assert_eq!(u64::from_be_bytes(joined), a, "{a:#x} comes back whole");
            for &b in &samples {
                let (pb, kb) = split(b);
                if pa == pb {
                    assert_eq!(ka.cmp(&kb), a.cmp(&b), "{a:#x} vs {b:#x}");
                }
            }
        }
    }
}
