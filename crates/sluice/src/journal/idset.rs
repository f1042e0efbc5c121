//! `custom_id`s seen, to report duplicates without holding the input.
//!
//! Each id is kept as a 64-bit keyed hash: its top 16 bits choose one of 65,536
//! partitions, and only some of the other bits are stored there. Two widths:
//!
//! - [`IdSet::exact`] stores 48 more bits (6 bytes): as good as a full 64-bit hash (a false
//!   duplicate among a million ids: a chance of about 3 in 100 million). For an input that
//!   cannot be read twice (standard input).
//! - [`IdSet::compact`] stores 32 more bits (4 bytes), two thirds of the memory, so ten
//!   million ids fit in about 43 MB; a hit is then only a *suspect* (among ten million ids,
//!   a false one is likely, about one chance in six), which the caller confirms by reading
//!   the input again ([`IdSet::hits_are_suspects`]).
//!
//! A partition is a chain of 64-byte blocks of keys (ten of 6 bytes, or fifteen of 4),
//! newest block first, and every block comes from 1 MiB chunks that are only ever
//! appended to. So the set's memory is what it uses, the last block of each chain partly
//! empty, with nothing freed and nothing copied as it grows. Small vectors per partition,
//! grown by reallocation, measured half as much again in resident memory: the allocator
//! could not reuse the blocks they left behind fast enough.
//!
//! A lookup scans one chain: 15 keys in two cache lines at a million ids, 150 at ten
//! million.
//!
//! Until there are [`FRONT_MAX`] ids they are held whole (the full 64-bit hash) in a small
//! open-addressed table instead, and only then moved into the partitions. 65,536
//! partitions cost 512 KiB and a fresh 64-byte block for each of the first 65,536 ids, so
//! a small run paid a cache miss into memory it had just faulted in for every id (2 % of
//! the CPU of a 200,000-request run, docs/BENCHMARKS.md); the table is 2 MiB at most and
//! stays in cache.

use std::hash::{BuildHasher, RandomState};

/// log2 of the number of partitions: the hash bits not stored.
const PARTITION_BITS: u32 = 16;

/// Blocks in a chunk (1 MiB).
const BLOCKS_PER_CHUNK: usize = 1 << 14;

/// The end of a chain.
const NO_BLOCK: u32 = u32::MAX;

/// Ids held in the front table before they move to the partitions: three quarters of its
/// largest size, 2^18 slots (2 MiB).
const FRONT_MAX: usize = 3 << 16;

/// The front table's first size, in slots.
const FRONT_START: usize = 1 << 10;

/// `N` keys of `W` bytes and the block before them in the chain: 64 bytes, one cache line.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Block<const W: usize, const N: usize> {
    keys: [[u8; W]; N],
    previous: u32,
}

/// A partition: its newest block and how many keys it holds (the newest block holds the
/// remainder, the others are full).
#[derive(Clone, Copy)]
struct Partition {
    newest: u32,
    len: u32,
}

/// A set of ids, as hashes. See the module docs.
pub struct IdSet(Width);

enum Width {
    Exact(Keys<6, 10>),
    Compact(Keys<4, 15>),
}

/// The keys of one width.
struct Keys<const W: usize, const N: usize> {
    /// Whole hashes, open-addressed (0 marks an empty slot), while there are fewer than
    /// [`FRONT_MAX`] ids; empty afterwards.
    front: Vec<u64>,
    /// Empty until the ids move here from the front table.
    partitions: Box<[Partition]>,
    chunks: Vec<Vec<Block<W, N>>>,
    len: usize,
    hasher: RandomState,
}

impl std::fmt::Debug for IdSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdSet")
            .field("len", &self.len())
            .field("compact", &self.hits_are_suspects())
            .finish()
    }
}

impl Default for IdSet {
    /// An exact set.
    fn default() -> Self {
        IdSet::exact()
    }
}

/// Runs `$body` with `$k` bound to the keys, whatever their width.
macro_rules! each_width {
    ($set:expr, $k:ident => $body:expr) => {
        match $set {
            Width::Exact($k) => $body,
            Width::Compact($k) => $body,
        }
    };
}

impl IdSet {
    /// A set whose hits are duplicates (6-byte keys).
    pub fn exact() -> Self {
        IdSet(Width::Exact(Keys::default()))
    }

    /// A set in two thirds of the memory whose hits are suspects to confirm (4-byte keys).
    pub fn compact() -> Self {
        IdSet(Width::Compact(Keys::default()))
    }

    /// Whether a hit may be another id with the same key, to be confirmed by comparing
    /// the ids themselves.
    pub fn hits_are_suspects(&self) -> bool {
        matches!(self.0, Width::Compact(_))
    }

    /// Adds `id`; false if it was seen already (or, in a compact set, an id with the same
    /// key was).
    pub fn insert(&mut self, id: &str) -> bool {
        each_width!(&mut self.0, k => k.insert(id))
    }

    /// Adds `id` without looking for it first: for ids that cannot be in the set yet, such
    /// as those of a run's own records (duplicates never get a record of their own id), read
    /// back on resume. A lookup scans a chain of 15 keys at a million ids and 150 at ten
    /// million; this only appends. An id added twice is harmless: it is still found.
    pub fn insert_new(&mut self, id: &str) {
        each_width!(&mut self.0, k => k.insert_new(id))
    }

    /// Ids seen.
    pub fn len(&self) -> usize {
        each_width!(&self.0, k => k.len)
    }

    /// True when none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held: the partitions and the chunks allocated (the last one partly used).
    pub fn heap_bytes(&self) -> usize {
        each_width!(&self.0, k => k.heap_bytes())
    }
}

impl<const W: usize, const N: usize> Default for Keys<W, N> {
    fn default() -> Self {
        Keys {
            front: vec![0; FRONT_START],
            partitions: Box::default(),
            chunks: Vec::new(),
            len: 0,
            hasher: RandomState::new(),
        }
    }
}

/// A hash's partition (its top bits) and the key stored there (its low `W` bytes).
fn split<const W: usize>(h: u64) -> (usize, [u8; W]) {
    let b = h.to_be_bytes();
    let mut key = [0u8; W];
    key.copy_from_slice(&b[8 - W..]);
    ((h >> (64 - PARTITION_BITS)) as usize, key)
}

impl<const W: usize, const N: usize> Keys<W, N> {
    fn insert(&mut self, id: &str) -> bool {
        let hash = self.hasher.hash_one(id);
        if !self.front.is_empty() {
            return self.insert_front(hash);
        }
        let (index, key) = split::<W>(hash);
        self.insert_key(index, key)
    }

    fn insert_new(&mut self, id: &str) {
        let hash = self.hasher.hash_one(id);
        if !self.front.is_empty() {
            // A lookup in the front table costs no more than the append.
            self.insert_front(hash);
            return;
        }
        let (index, key) = split::<W>(hash);
        self.append_key(index, key);
    }

    /// Adds a whole hash to the front table; false if it is there. Past [`FRONT_MAX`] ids
    /// the table doubles, or at its largest moves everything to the partitions.
    fn insert_front(&mut self, hash: u64) -> bool {
        // 0 marks an empty slot: the one hash in 2^64 that is 0 is kept as 1.
        let hash = hash.max(1);
        let mask = self.front.len() - 1;
        let mut slot = hash as usize & mask;
        loop {
            match self.front[slot] {
                0 => break,
                h if h == hash => return false,
                _ => slot = (slot + 1) & mask,
            }
        }
        self.front[slot] = hash;
        self.len += 1;
        if self.len * 4 > self.front.len() * 3 {
            if self.len >= FRONT_MAX {
                self.move_to_partitions();
            } else {
                self.grow_front();
            }
        }
        true
    }

    fn grow_front(&mut self) {
        let size = self.front.len() * 2;
        let old = std::mem::replace(&mut self.front, vec![0; size]);
        let mask = self.front.len() - 1;
        for hash in old.into_iter().filter(|&h| h != 0) {
            let mut slot = hash as usize & mask;
            while self.front[slot] != 0 {
                slot = (slot + 1) & mask;
            }
            self.front[slot] = hash;
        }
    }

    /// Moves the front table's hashes into the partitions, which hold every id from now.
    fn move_to_partitions(&mut self) {
        let front = std::mem::take(&mut self.front);
        self.partitions = vec![
            Partition {
                newest: NO_BLOCK,
                len: 0
            };
            1 << PARTITION_BITS
        ]
        .into_boxed_slice();
        let len = self.len;
        for hash in front.into_iter().filter(|&h| h != 0) {
            let (index, key) = split::<W>(hash);
            self.append_key(index, key);
        }
        self.len = len;
    }

    fn insert_key(&mut self, index: usize, key: [u8; W]) -> bool {
        let Partition { newest, len } = self.partitions[index];
        if self.chain_contains(newest, len as usize, &key) {
            return false;
        }
        self.append_key(index, key);
        true
    }

    fn append_key(&mut self, index: usize, key: [u8; W]) {
        let Partition { newest, len } = self.partitions[index];
        let fill = len as usize % N;
        let newest = if fill == 0 {
            let block = self.push_block(newest);
            self.partitions[index].newest = block;
            block
        } else {
            newest
        };
        self.block_mut(newest).keys[fill] = key;
        self.partitions[index].len += 1;
        self.len += 1;
    }

    fn heap_bytes(&self) -> usize {
        self.front.capacity() * size_of::<u64>()
            + self.partitions.len() * size_of::<Partition>()
            + self
                .chunks
                .iter()
                .map(|c| c.capacity() * size_of::<Block<W, N>>())
                .sum::<usize>()
    }

    fn chain_contains(&self, newest: u32, len: usize, key: &[u8; W]) -> bool {
        let mut block = newest;
        let mut left = len;
        // The newest block holds the remainder; every older one is full.
        let mut in_block = match len % N {
            0 => N,
            r => r,
        };
        while left > 0 {
            let b = self.block(block);
            if b.keys[..in_block].contains(key) {
                return true;
            }
            left -= in_block;
            in_block = N;
            block = b.previous;
        }
        false
    }

    /// Appends an empty block whose chain goes on at `previous`; returns its number.
    fn push_block(&mut self, previous: u32) -> u32 {
        if self
            .chunks
            .last()
            .is_none_or(|c| c.len() == BLOCKS_PER_CHUNK)
        {
            // Reserved, not touched: pages become resident as blocks are written.
            self.chunks.push(Vec::with_capacity(BLOCKS_PER_CHUNK));
        }
        let number =
            (self.chunks.len() - 1) * BLOCKS_PER_CHUNK + self.chunks.last().map_or(0, Vec::len);
        let number = u32::try_from(number).expect("fewer than 4 billion blocks");
        if let Some(chunk) = self.chunks.last_mut() {
            chunk.push(Block {
                keys: [[0; W]; N],
                previous,
            });
        }
        number
    }

    fn block(&self, number: u32) -> &Block<W, N> {
        let n = number as usize;
        &self.chunks[n / BLOCKS_PER_CHUNK][n % BLOCKS_PER_CHUNK]
    }

    fn block_mut(&mut self, number: u32) -> &mut Block<W, N> {
        let n = number as usize;
        &mut self.chunks[n / BLOCKS_PER_CHUNK][n % BLOCKS_PER_CHUNK]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_is_one_cache_line() {
        assert_eq!(size_of::<Block<6, 10>>(), 64);
        assert_eq!(size_of::<Block<4, 15>>(), 64);
    }

    #[test]
    fn a_compact_set_finds_what_an_exact_one_does_in_two_thirds_of_the_memory() {
        let (mut exact, mut compact) = (IdSet::exact(), IdSet::compact());
        assert!(compact.hits_are_suspects() && !exact.hits_are_suspects());
        let n = 1_000_000;
        for i in 0..n {
            let id = format!("id-{i}");
            exact.insert(&id);
            compact.insert(&id);
        }
        for i in (0..n).step_by(991) {
            assert!(!compact.insert(&format!("id-{i}")), "{i} seen");
        }
        // At a million ids the partly filled last block of each of the 65,536 chains still
        // weighs; the share falls towards two thirds as the chains grow.
        let ratio = compact.heap_bytes() as f64 / exact.heap_bytes() as f64;
        assert!(ratio < 0.8, "{ratio:.2}");
    }

    #[test]
    fn ids_added_without_a_lookup_are_found_later() {
        let mut s = IdSet::default();
        for i in 0..50_000 {
            s.insert_new(&format!("id-{i}"));
        }
        s.insert_new("id-7");
        assert!(!s.insert("id-7") && !s.insert("id-49999"));
        assert!(s.insert("id-50000"));
    }

    #[test]
    fn finds_duplicates_among_many() {
        let mut s = IdSet::default();
        let n = 1_000_000;
        for i in 0..n {
            assert!(s.insert(&format!("id-{i}")), "{i} is new");
        }
        assert_eq!(s.len(), n);
        for i in (0..n).step_by(997) {
            assert!(!s.insert(&format!("id-{i}")), "{i} seen");
        }
        assert!(s.insert("another"));
        assert!(!s.insert("another"));
        assert_eq!(s.len(), n + 1);
        let per_id = s.heap_bytes() as f64 / n as f64;
        assert!(per_id < 10.0, "{per_id:.2} bytes an id");
    }

    #[test]
    fn chains_longer_than_a_block_are_searched_whole() {
        // Hashes that share a partition: every key of a long chain must be found, the
        // oldest block's as well as the newest's, and a new key must not be.
        let mut s = Keys::<6, 10>::default();
        s.move_to_partitions();
        let keys: Vec<[u8; 6]> = (0..35u8).map(|i| [0, 0, 0, 0, 1, i]).collect();
        for (i, key) in keys.iter().enumerate() {
            assert!(s.insert_key(7, *key), "{i} is new");
        }
        for key in &keys {
            assert!(!s.insert_key(7, *key), "{key:?} is found");
        }
        let Partition { newest, len } = s.partitions[7];
        assert_eq!(len, 35);
        assert!(!s.chain_contains(newest, 35, &[0, 0, 0, 0, 2, 0]));
        // The zeroed slots of the newest block's empty places are not keys.
        assert!(!s.chain_contains(newest, 35, &[0; 6]));
    }

    #[test]
    fn ids_are_found_on_both_sides_of_the_move_from_the_front_table() {
        for mut s in [IdSet::exact(), IdSet::compact()] {
            let n = FRONT_MAX + 5_000;
            for i in 0..n {
                assert!(s.insert(&format!("id-{i}")), "{i} is new");
                if i == FRONT_MAX / 2 {
                    assert!(!s.insert("id-17"), "found in the front table");
                }
            }
            each_width!(&s.0, k => assert!(k.front.is_empty() && !k.partitions.is_empty()));
            assert_eq!(s.len(), n);
            for i in (0..n).step_by(101) {
                assert!(!s.insert(&format!("id-{i}")), "{i} seen");
            }
            s.insert_new("late");
            assert!(!s.insert("late"));
            assert_eq!(s.len(), n + 1);
        }
    }

    #[test]
    fn a_small_set_stays_in_its_front_table() {
        let mut s = IdSet::default();
        for i in 0..50_000 {
            s.insert_new(&format!("id-{i}"));
        }
        assert!(!s.insert("id-49999") && s.insert("id-50000"));
        // 2^17 slots of 8 bytes; the partitions alone would be 512 KiB, and a block each
        // for these ids 3 MiB more.
        assert_eq!(s.heap_bytes(), 1 << 20);
    }

    #[test]
    fn a_hash_is_split_without_loss() {
        let samples = [
            0u64,
            1,
            0xffff,
            0x1_0000_0000_0000,
            u64::MAX,
            0x0123_4567_89ab_cdef,
        ];
        for &a in &samples {
            let (pa, ka) = split::<6>(a);
            let mut joined = [0u8; 8];
            joined[..2].copy_from_slice(&(pa as u16).to_be_bytes());
            joined[2..].copy_from_slice(&ka);
            assert_eq!(u64::from_be_bytes(joined), a, "{a:#x} comes back whole");
        }
    }
}
