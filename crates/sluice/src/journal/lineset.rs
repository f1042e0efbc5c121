//! The set of input lines that have their record: one bit a line, so a million lines
//! cost 125 KB.

/// A growable bitmap of 1-based line numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineSet {
    words: Vec<u64>,
    len: u64,
}

impl LineSet {
    /// Adds `line`; returns false if it was there already.
    pub fn insert(&mut self, line: u64) -> bool {
        let (word, bit) = ((line / 64) as usize, line % 64);
        if word >= self.words.len() {
            self.words.resize(word + 1, 0);
        }
        let mask = 1u64 << bit;
        let fresh = self.words[word] & mask == 0;
        self.words[word] |= mask;
        self.len += u64::from(fresh);
        fresh
    }

    /// Removes `line`.
    pub fn remove(&mut self, line: u64) {
        let (word, bit) = ((line / 64) as usize, line % 64);
        if let Some(w) = self.words.get_mut(word)
            && *w & (1 << bit) != 0
        {
            *w &= !(1 << bit);
            self.len -= 1;
        }
    }

    /// Whether `line` is in.
    pub fn contains(&self, line: u64) -> bool {
        self.words
            .get((line / 64) as usize)
            .is_some_and(|w| w & (1 << (line % 64)) != 0)
    }

    /// The first line (from 1) not in the set.
    pub fn first_absent(&self) -> u64 {
        for (i, w) in self.words.iter().enumerate() {
            // Line 0 does not exist: count it as present.
            let w = if i == 0 { *w | 1 } else { *w };
            if w != u64::MAX {
                return i as u64 * 64 + u64::from((!w).trailing_zeros());
            }
        }
        (self.words.len() as u64 * 64).max(1)
    }

    /// Lines in the set.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes of memory it holds.
    pub fn heap_bytes(&self) -> usize {
        self.words.capacity() * 8
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn first_absent_is_the_first_line_without_a_record() {
        let mut s = super::LineSet::default();
        assert_eq!(s.first_absent(), 1);
        for l in 1..=200 {
            s.insert(l);
        }
        assert_eq!(s.first_absent(), 201);
        s.insert(202);
        assert_eq!(s.first_absent(), 201);
        s.insert(201);
        assert_eq!(s.first_absent(), 203);
        let mut t = super::LineSet::default();
        t.insert(2);
        assert_eq!(t.first_absent(), 1);
    }

    use super::*;

    #[test]
    fn inserts_removes_and_counts() {
        let mut s = LineSet::default();
        assert!(s.insert(1));
        assert!(!s.insert(1));
        assert!(s.insert(1_000_000));
        assert!(s.contains(1) && s.contains(1_000_000) && !s.contains(2));
        assert_eq!(s.len(), 2);
        s.remove(1);
        s.remove(5);
        assert_eq!(s.len(), 1);
        assert!(s.heap_bytes() <= 1_000_000 / 8 + 64);
    }
}
