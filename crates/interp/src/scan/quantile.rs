//! Uniform examples from equal-width activation bins (seed 002), in one pass.
//!
//! Each bin keeps the `per_bin` activations with the smallest seeded random keys: a uniform
//! sample without replacement of everything that fell in the bin, whatever the order of
//! arrival. The bins must be fixed before the maximum is known, so they live on a grid that
//! only ever doubles: `2B` bins of width `R / 2B` over `[0, R]`, with `R` the first value
//! rounded up to a power of two. When a value exceeds `R`, `R` doubles and bins `2i` and
//! `2i + 1` merge into bin `i`; the smallest keys of a union are the smallest keys of the
//! two samples, so the sample stays exactly uniform. At the end the bins from 0 up to the
//! one holding the maximum are reported: between `B + 1` and `2B` bins of equal width.

use std::collections::BinaryHeap;

use super::example::Example;

/// One bin: how many activations fell in it and the sample (a max-heap on the key, so
/// the root is the first to leave).
#[derive(Default)]
struct Bin {
    count: u64,
    sample: BinaryHeap<Keyed>,
}

struct Keyed(Example);

impl PartialEq for Keyed {
    fn eq(&self, other: &Self) -> bool {
        self.0.key == other.0.key
    }
}
impl Eq for Keyed {}
impl PartialOrd for Keyed {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Keyed {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.key.cmp(&other.0.key)
    }
}

/// A finished bin: `lo ≤ value < hi` (the last bin also holds `hi`).
#[derive(Clone, Debug, PartialEq)]
pub struct QuantileBin {
    pub lo: f32,
    pub hi: f32,
    pub count: u64,
    /// The sample, by ascending key.
    pub examples: Vec<Example>,
}

pub struct QuantileSampler {
    per_bin: usize,
    /// `2B` bins over `[0, range]`.
    bins: Vec<Bin>,
    /// `R`, a power of two; 0 until the first value.
    range: f64,
    max: f32,
}

impl QuantileSampler {
    /// `bins` is B: the grid holds 2B bins.
    pub fn new(bins: usize, per_bin: usize) -> Self {
        QuantileSampler {
            per_bin,
            bins: (0..2 * bins).map(|_| Bin::default()).collect(),
            range: 0.0,
            max: 0.0,
        }
    }

    /// Places a positive activation on the grid (doubling it first if needed) and returns
    /// its bin, or None for a value the sampler does not take (not positive or not finite).
    fn place(&mut self, value: f32) -> Option<usize> {
        if !(value > 0.0 && value.is_finite()) || self.bins.is_empty() {
            return None;
        }
        let v = value as f64;
        if self.range == 0.0 {
            self.range = 2f64.powi(v.log2().ceil() as i32);
            // log2 rounding near a power of two: make sure v ≤ R.
            while self.range < v {
                self.range *= 2.0;
            }
        }
        while v > self.range {
            self.double();
        }
        self.max = self.max.max(value);
        let width = self.range / self.bins.len() as f64;
        Some(((v / width) as usize).min(self.bins.len() - 1))
    }

    fn double(&mut self) {
        let n = self.bins.len();
        let mut old: Vec<Bin> = std::mem::take(&mut self.bins);
        let mut merged: Vec<Bin> = Vec::with_capacity(n);
        for i in 0..n / 2 {
            let b = std::mem::take(&mut old[2 * i + 1]);
            let mut a = std::mem::take(&mut old[2 * i]);
            a.count += b.count;
            a.sample.extend(b.sample);
            while a.sample.len() > self.per_bin {
                a.sample.pop();
            }
            merged.push(a);
        }
        merged.extend((n / 2..n).map(|_| Bin::default()));
        self.bins = merged;
        self.range *= 2.0;
    }

    /// Counts an activation; returns its bin when an example with `key` would enter the
    /// sample, so the caller builds the example's context only then.
    pub fn admit(&mut self, value: f32, key: u64) -> Option<usize> {
        let bin = self.place(value)?;
        let b = &mut self.bins[bin];
        b.count += 1;
        let enters =
            b.sample.len() < self.per_bin || b.sample.peek().is_some_and(|worst| key < worst.0.key);
        enters.then_some(bin)
    }

    /// Adds an example to the bin `admit` returned.
    pub fn insert(&mut self, bin: usize, example: Example) {
        let b = &mut self.bins[bin];
        b.sample.push(Keyed(example));
        if b.sample.len() > self.per_bin {
            b.sample.pop();
        }
    }

    /// The bins from 0 up to the one holding the maximum.
    pub fn finish(self) -> Vec<QuantileBin> {
        if self.range == 0.0 {
            return Vec::new();
        }
        let width = self.range / self.bins.len() as f64;
        let last = ((self.max as f64 / width) as usize).min(self.bins.len() - 1);
        self.bins
            .into_iter()
            .take(last + 1)
            .enumerate()
            .map(|(i, b)| QuantileBin {
                lo: (i as f64 * width) as f32,
                hi: ((i + 1) as f64 * width) as f32,
                count: b.count,
                examples: b
                    .sample
                    .into_sorted_vec()
                    .into_iter()
                    .map(|k| k.0)
                    .collect(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn example(value: f32, key: u64) -> Example {
        Example {
            window: 0,
            ids: Arc::from(vec![0u32]),
            pos: 0,
            value,
            start: 0,
            acts: vec![value],
            key,
        }
    }

    fn feed(s: &mut QuantileSampler, values: &[(f32, u64)]) {
        for &(v, key) in values {
            if let Some(bin) = s.admit(v, key) {
                s.insert(bin, example(v, key));
            }
        }
    }

    #[test]
    fn examples_fall_in_their_bins_and_counts_add_up_after_doubling() {
        let mut s = QuantileSampler::new(2, 2);
        // First value 0.3 sets R = 0.5 (4 bins of 0.125); 3.0 forces R = 4 (bins of 1).
        let values: Vec<(f32, u64)> = [0.3, 0.1, 0.45, 3.0, 1.5, 0.9, 2.2, 0.2]
            .iter()
            .enumerate()
            .map(|(i, &v)| (v, (i as u64 * 7919) % 13))
            .collect();
        feed(&mut s, &values);
        let bins = s.finish();
        assert_eq!(bins.len(), 4, "max 3.0 lies in the fourth bin of width 1");
        assert_eq!(
            bins.iter().map(|b| b.count).sum::<u64>(),
            values.len() as u64
        );
        for (i, b) in bins.iter().enumerate() {
            assert_eq!((b.lo, b.hi), (i as f32, i as f32 + 1.0));
            let inside = values
                .iter()
                .filter(|(v, _)| *v >= b.lo && *v < b.hi)
                .count();
            assert_eq!(b.count as usize, inside);
            assert_eq!(b.examples.len(), inside.min(2));
            for e in &b.examples {
                assert!(e.value >= b.lo && e.value < b.hi, "{} in {:?}", e.value, b);
            }
        }
    }

    #[test]
    fn the_sample_is_the_smallest_keys_of_the_bin_whatever_the_order() {
        let values: Vec<(f32, u64)> = (0..200u64)
            .map(|i| (0.05 + (i % 7) as f32 * 0.1, (i * 37) % 211))
            .collect();
        let mut forward = QuantileSampler::new(4, 5);
        feed(&mut forward, &values);
        let mut reversed = QuantileSampler::new(4, 5);
        feed(
            &mut reversed,
            &values.iter().rev().copied().collect::<Vec<_>>(),
        );
        let keys = |bins: &[QuantileBin]| -> Vec<Vec<u64>> {
            bins.iter()
                .map(|b| b.examples.iter().map(|e| e.key).collect())
                .collect()
        };
        let bins = forward.finish();
        assert_eq!(keys(&bins), keys(&reversed.finish()));
        for b in &bins {
            let mut expected: Vec<u64> = values
                .iter()
                .filter(|(v, _)| *v >= b.lo && *v < b.hi)
                .map(|&(_, k)| k)
                .collect();
            expected.sort();
            expected.truncate(5);
            assert_eq!(
                b.examples.iter().map(|e| e.key).collect::<Vec<_>>(),
                expected
            );
        }
    }

    #[test]
    fn a_value_exactly_at_the_range_goes_to_the_last_bin() {
        let mut s = QuantileSampler::new(2, 1);
        feed(&mut s, &[(1.0, 1)]);
        let bins = s.finish();
        assert_eq!(bins.len(), 4);
        assert_eq!(bins[3].count, 1);
        assert_eq!(bins[3].hi, 1.0);
    }
}
