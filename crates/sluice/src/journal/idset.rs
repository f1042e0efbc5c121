//! `custom_id`s seen, to report duplicates without holding the input: each id as a 64-bit
//! hash in one of 4,096 small sorted vectors chosen by the hash's top bits. A lookup is a
//! bisection inside a few kilobytes; an insert moves at most that much; the vectors grow by
//! a quarter at a time, so the set costs about 9 bytes an id (a `HashSet<u64>` costs about
//! 18) and never holds two copies of itself, as one big vector would while it reallocates.
//! A false duplicate needs a 64-bit collision: for a million ids, a chance of about 3 in
//! 100 million.

use std::hash::{BuildHasher, RandomState};

/// log2 of the number of partitions.
const PARTITION_BITS: u32 = 12;

/// A set of ids, as hashes. See the module docs.
#[derive(Debug)]
pub struct IdSet {
    partitions: Vec<Vec<u64>>,
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
        let h = self.hasher.hash_one(id);
        let part = &mut self.partitions[(h >> (64 - PARTITION_BITS)) as usize];
        match part.binary_search(&h) {
            Ok(_) => false,
            Err(at) => {
                if part.len() == part.capacity() {
                    part.reserve_exact((part.len() / 4).max(8));
                }
                part.insert(at, h);
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_duplicates_among_many() {
        let mut s = IdSet::default();
        let n = 200_000;
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
        let bytes: usize = s.partitions.iter().map(|p| p.capacity() * 8).sum();
        assert!(bytes < n * 11, "{} bytes an id", bytes / n);
    }
}
