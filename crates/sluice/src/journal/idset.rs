//! `custom_id`s seen, to report duplicates without holding the input.
//!
//! Each id is kept as a 64-bit keyed hash: its top 16 bits choose one of 65,536
//! partitions, and only the other 48 bits are stored there, as 6 bytes. That tells ids
//! apart as well as a full 64-bit hash (a false duplicate among a million ids: a chance of
//! about 3 in 100 million) at three quarters of its size.
//!
//! A partition is a chain of 64-byte blocks of ten keys, newest block first, and every
//! block comes from 1 MiB chunks that are only ever appended to. So the set's memory is
//! what it uses — about 8.5 bytes an id at a million ids, the last block of each chain
//! partly empty — with nothing freed and nothing copied as it grows. Small vectors per
//! partition, grown by reallocation, measured half as much again in resident memory: the
//! allocator could not reuse the blocks they left behind fast enough.
//!
//! A lookup scans one chain: 15 keys in two cache lines at a million ids, 150 at ten
//! million.

use std::hash::{BuildHasher, RandomState};

/// log2 of the number of partitions: the hash bits not stored.
const PARTITION_BITS: u32 = 16;

/// Keys in a block.
const PER_BLOCK: usize = 10;

/// Blocks in a chunk (1 MiB).
const BLOCKS_PER_CHUNK: usize = 1 << 14;

/// The end of a chain.
const NO_BLOCK: u32 = u32::MAX;

/// The stored part of a hash: its low 48 bits.
type Key = [u8; 6];

/// Ten keys and the block before them in the chain: 64 bytes, one cache line.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Block {
    keys: [Key; PER_BLOCK],
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
pub struct IdSet {
    partitions: Box<[Partition]>,
    chunks: Vec<Vec<Block>>,
    len: usize,
    hasher: RandomState,
}

impl std::fmt::Debug for IdSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdSet").field("len", &self.len).finish()
    }
}

impl Default for IdSet {
    fn default() -> Self {
        IdSet {
            partitions: vec![
                Partition {
                    newest: NO_BLOCK,
                    len: 0
                };
                1 << PARTITION_BITS
            ]
            .into_boxed_slice(),
            chunks: Vec::new(),
            len: 0,
            hasher: RandomState::new(),
        }
    }
}

/// A hash's partition (its top bits) and the key stored there (the rest).
fn split(h: u64) -> (usize, Key) {
    let b = h.to_be_bytes();
    (
        (h >> (64 - PARTITION_BITS)) as usize,
        [b[2], b[3], b[4], b[5], b[6], b[7]],
    )
}

impl IdSet {
    /// Adds `id`; false if it was seen already.
    pub fn insert(&mut self, id: &str) -> bool {
        let (index, key) = split(self.hasher.hash_one(id));
        self.insert_key(index, key)
    }

    /// Adds `id` without looking for it first: for ids that cannot be in the set yet, such
    /// as those of a run's own records (duplicates never get a record of their own id), read
    /// back on resume. A lookup scans a chain of 15 keys at a million ids and 150 at ten
    /// million; this only appends. An id added twice is harmless: it is still found.
    pub fn insert_new(&mut self, id: &str) {
        let (index, key) = split(self.hasher.hash_one(id));
        self.append_key(index, key);
    }

    fn insert_key(&mut self, index: usize, key: Key) -> bool {
        let Partition { newest, len } = self.partitions[index];
        if self.chain_contains(newest, len as usize, &key) {
            return false;
        }
        self.append_key(index, key);
        true
    }

    fn append_key(&mut self, index: usize, key: Key) {
        let Partition { newest, len } = self.partitions[index];
        let fill = len as usize % PER_BLOCK;
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

    /// Ids seen.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes held: the partitions and the chunks allocated (the last one partly used).
    pub fn heap_bytes(&self) -> usize {
        self.partitions.len() * size_of::<Partition>()
            + self
                .chunks
                .iter()
                .map(|c| c.capacity() * size_of::<Block>())
                .sum::<usize>()
    }

    fn chain_contains(&self, newest: u32, len: usize, key: &Key) -> bool {
        let mut block = newest;
        let mut left = len;
        // The newest block holds the remainder; every older one is full.
        let mut in_block = match len % PER_BLOCK {
            0 => PER_BLOCK,
            r => r,
        };
        while left > 0 {
            let b = self.block(block);
            if b.keys[..in_block].contains(key) {
                return true;
            }
            left -= in_block;
            in_block = PER_BLOCK;
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
                keys: [[0; 6]; PER_BLOCK],
                previous,
            });
        }
        number
    }

    fn block(&self, number: u32) -> &Block {
        let n = number as usize;
        &self.chunks[n / BLOCKS_PER_CHUNK][n % BLOCKS_PER_CHUNK]
    }

    fn block_mut(&mut self, number: u32) -> &mut Block {
        let n = number as usize;
        &mut self.chunks[n / BLOCKS_PER_CHUNK][n % BLOCKS_PER_CHUNK]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_is_one_cache_line() {
        assert_eq!(size_of::<Block>(), 64);
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
        let mut s = IdSet::default();
        let keys: Vec<Key> = (0..35u8).map(|i| [0, 0, 0, 0, 1, i]).collect();
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
            let (pa, ka) = split(a);
            let mut joined = [0u8; 8];
            joined[..2].copy_from_slice(&(pa as u16).to_be_bytes());
            joined[2..].copy_from_slice(&ka);
            assert_eq!(u64::from_be_bytes(joined), a, "{a:#x} comes back whole");
        }
    }
}
