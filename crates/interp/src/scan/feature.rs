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
    pub runs: Runs,
    pub top: TopExamples,
    pub quantiles: QuantileSampler,
}

/// How a feature fires along the token axis, over counted positions: `pairs` firing
/// positions whose next position is counted and in the same window, `stays` of them where it
/// fires at the next position too, and `runs`, its maximal stretches of consecutive firing
/// positions (a position the scan does not count ends a run).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Runs {
    pub pairs: u64,
    pub stays: u64,
    pub runs: u64,
}

/// Features that fire at fewer pairs than this get no P(stay): one seen once or twice
/// stays with probability 0 or 1 by chance.
pub const MIN_PAIRS: u64 = 5;

impl Runs {
    /// Counts a batch's firing rows of one feature (`rows` ascending, all counted; rows are
    /// `window · ctx + position` and batches hold whole windows).
    pub fn add(&mut self, rows: impl Iterator<Item = usize>, counted: &[bool], ctx: usize) {
        let mut last: Option<usize> = None;
        for row in rows {
            let continues = last.is_some_and(|l| l + 1 == row && row % ctx != 0);
            if continues {
                self.stays += 1;
            } else {
                self.runs += 1;
            }
            let next_counted = (row + 1) % ctx != 0 && counted.get(row + 1) == Some(&true);
            self.pairs += u64::from(next_counted);
            last = Some(row);
        }
    }
}

impl FeatureState {
    pub fn new(top_k: usize, bins: usize, per_bin: usize) -> Self {
        FeatureState {
            count: 0,
            sum: 0.0,
            max: 0.0,
            hist: vec![0; histogram::BINS],
            runs: Runs::default(),
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
            p_stay: (self.runs.pairs >= MIN_PAIRS)
                .then(|| self.runs.stays as f64 / self.runs.pairs as f64),
            mean_run: (self.runs.runs > 0).then(|| self.count as f64 / self.runs.runs as f64),
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
    /// P(fires at the next position | fires here), over the pairs [`Runs`] counts; `None`
    /// below [`MIN_PAIRS`] pairs.
    pub p_stay: Option<f64>,
    /// Mean length of its runs in positions; `None` when it never fired.
    pub mean_run: Option<f64>,
    /// The top activating examples, strongest first.
    pub top: Vec<Example>,
    /// Uniform examples per equal-width activation bin.
    pub bins: Vec<QuantileBin>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_end_at_window_edges_and_uncounted_positions() {
        // Two windows of 5; position 3 of the first window is not counted.
        let counted = [true, true, true, false, true, true, true, true, true, true];
        let mut runs = Runs::default();
        // Window 0: on at 0, 1, 2 (next uncounted) and 4 (window end); window 1: on at 5, 7, 8, 9.
        runs.add([0, 1, 2, 4, 5, 7, 8, 9].into_iter(), &counted, 5);
        // Pairs: 0, 1 (next counted), 5, 7, 8; stays: 0→1, 1→2, 7→8, 8→9.
        assert_eq!(
            runs,
            Runs {
                pairs: 5,
                stays: 4,
                runs: 4
            }
        );
    }
}
