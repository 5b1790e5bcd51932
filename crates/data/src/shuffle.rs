//! Seeded shuffling of a document stream through a bounded buffer, and the small generator
//! behind it (SplitMix64: its output is fixed forever, unlike a library's default RNG).

use crate::document::{Document, Documents};
use crate::error::Result;

/// A deterministic 64-bit generator (Steele, Lea and Flood's SplitMix64).
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in 0..n (n > 0), by rejection so that no value is favoured.
    pub fn below(&mut self, n: u64) -> u64 {
        let zone = u64::MAX - u64::MAX % n;
        loop {
            let x = self.next_u64();
            if x < zone {
                return x % n;
            }
        }
    }
}

/// Documents in a seeded random order: a buffer of `buffer` documents is filled from the
/// stream and each output is drawn from it at random. With a buffer at least as large as
/// the corpus this is a uniform shuffle; smaller buffers mix only nearby documents.
pub fn shuffle_documents(inner: Documents, seed: u64, buffer: usize) -> Documents {
    Box::new(Shuffled {
        inner,
        rng: SplitMix64::new(seed),
        buffer: Vec::with_capacity(buffer.min(1 << 16)),
        capacity: buffer.max(1),
        inner_done: false,
    })
}

struct Shuffled {
    inner: Documents,
    rng: SplitMix64,
    buffer: Vec<Document>,
    capacity: usize,
    inner_done: bool,
}

impl Iterator for Shuffled {
    type Item = Result<Document>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.inner_done && self.buffer.len() < self.capacity {
            match self.inner.next() {
                Some(Ok(doc)) => self.buffer.push(doc),
                Some(Err(e)) => {
                    self.inner_done = true;
                    self.buffer.clear();
                    return Some(Err(e));
                }
                None => self.inner_done = true,
            }
        }
        if self.buffer.is_empty() {
            return None;
        }
        let i = self.rng.below(self.buffer.len() as u64) as usize;
        Some(Ok(self.buffer.swap_remove(i)))
    }
}
