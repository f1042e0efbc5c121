//! `custom_id`s seen, to report duplicates without holding the input: each id as a 64-bit
//! hash, 8 bytes an id. Recent ids sit in a small hash set; every 64 Ki of them are merged
//! into one sorted vector (merged in place from the back, so it never needs a second copy),
//! which is searched by bisection. A million ids cost 8 MB where a `HashSet<u64>` costs
//! about 18 MB. A false duplicate needs a 64-bit collision: for a million ids, a chance of
//! about 3 in 100 million.

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};

/// Ids merged into the sorted part at a time.
const RECENT_MAX: usize = 64 * 1024;

/// A set of ids, as hashes. See the module docs.
#[derive(Debug, Default)]
pub struct IdSet {
    sorted: Vec<u64>,
    recent: HashSet<u64>,
    hasher: RandomState,
}

impl IdSet {
    /// Adds `id`; false if it was seen already.
    pub fn insert(&mut self, id: &str) -> bool {
        let h = self.hasher.hash_one(id);
        if self.sorted.binary_search(&h).is_ok() || !self.recent.insert(h) {
            return false;
        }
        if self.recent.len() >= RECENT_MAX {
            self.merge();
        }
        true
    }

    /// Ids seen.
    pub fn len(&self) -> usize {
        self.sorted.len() + self.recent.len()
    }

    /// True when none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Moves the recent ids into the sorted vector, merging from the back in place.
    fn merge(&mut self) {
        let mut fresh: Vec<u64> = self.recent.drain().collect();
        fresh.sort_unstable();
        let old = self.sorted.len();
        self.sorted.reserve_exact(fresh.len());
        self.sorted.resize(old + fresh.len(), 0);
        let (mut i, mut j, mut k) = (old, fresh.len(), self.sorted.len());
        while j > 0 {
            k -= 1;
            if i > 0 && self.sorted[i - 1] > fresh[j - 1] {
                self.sorted[k] = self.sorted[i - 1];
                i -= 1;
            } else {
                self.sorted[k] = fresh[j - 1];
                j -= 1;
            }
        }
        self.recent.shrink_to(RECENT_MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_duplicates_across_merges() {
        let mut s = IdSet::default();
        let n = 3 * RECENT_MAX + 17;
        for i in 0..n {
            assert!(s.insert(&format!("id-{i}")), "{i} is new");
        }
        assert_eq!(s.len(), n);
        assert!(
            s.sorted.windows(2).all(|w| w[0] < w[1]),
            "sorted, no repeats"
        );
        for i in (0..n).step_by(997) {
            assert!(!s.insert(&format!("id-{i}")), "{i} seen");
        }
        assert!(s.insert("another"));
        assert!(!s.insert("another"));
        assert_eq!(s.len(), n + 1);
    }
}
