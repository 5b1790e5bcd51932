//! Everything the scan keeps for one feature.

use super::example::Example;
use super::histogram;
use super::quantile::{QuantileBin, QuantileSampler};
use super::top::TopExamples;

pub(crate) struct FeatureState {
    pub count: u64,
    pub sum: f64,
    pub max: f32,
    pub hist: Vec<u32>,
    pub top: TopExamples,
    pub quantiles: QuantileSampler,
}

impl FeatureState {
    pub fn new(top_k: usize, bins: usize, per_bin: usize) -> Self {
        FeatureState {
            count: 0,
            sum: 0.0,
            max: 0.0,
            hist: vec![0; histogram::BINS],
            top: TopExamples::new(top_k),
            quantiles: QuantileSampler::new(bins, per_bin),
        }
    }

    /// Counts a nonzero activation (the examples are offered separately).
    pub fn count(&mut self, value: f32) {
        self.count += 1;
        self.sum += value as f64;
        if self.count == 1 || value > self.max {
            self.max = value;
        }
        self.hist[histogram::bin(value)] += 1;
    }

    pub fn finish(self, positions: u64) -> FeatureScan {
        FeatureScan {
            count: self.count,
            density: self.count as f64 / positions.max(1) as f64,
            mean: if self.count == 0 {
                0.0
            } else {
                self.sum / self.count as f64
            },
            max: self.max,
            hist: self.hist,
            top: self.top.into_sorted(),
            bins: self.quantiles.finish(),
        }
    }
}

/// A feature's scan results.
#[derive(Clone, Debug, PartialEq)]
pub struct FeatureScan {
    /// Positions where it fired (f ≠ 0).
    pub count: u64,
    /// `count` over the positions scanned.
    pub density: f64,
    /// Mean activation where it fired.
    pub mean: f64,
    /// Largest activation (0 when it never fired).
    pub max: f32,
    /// Counts over `histogram::edges()`.
    pub hist: Vec<u32>,
    /// The top activating examples, strongest first.
    pub top: Vec<Example>,
    /// Uniform examples per equal-width activation bin.
    pub bins: Vec<QuantileBin>,
}
