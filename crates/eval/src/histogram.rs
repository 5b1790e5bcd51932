//! Fixed-width histograms in the one shape every eval file uses.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Bin {
    pub lo: f64,
    pub hi: f64,
    pub count: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    pub bin_width: f64,
    /// Increasing, aligned to multiples of `bin_width`, empty bins between filled ones kept.
    pub bins: Vec<Bin>,
}

impl Histogram {
    /// Bins `values` (finite ones) into `[i·w, (i+1)·w)` bins from the lowest to the highest
    /// filled one.
    pub fn of(values: impl IntoIterator<Item = f64>, bin_width: f64) -> Self {
        let mut indices: Vec<i64> = values
            .into_iter()
            .filter(|v| v.is_finite())
            .map(|v| (v / bin_width).floor() as i64)
            .collect();
        indices.sort_unstable();
        let mut bins = Vec::new();
        if let (Some(&first), Some(&last)) = (indices.first(), indices.last()) {
            let mut counts = vec![0u64; (last - first + 1) as usize];
            for i in &indices {
                counts[(i - first) as usize] += 1;
            }
            bins = counts
                .into_iter()
                .enumerate()
                .map(|(j, count)| {
                    let i = first + j as i64;
                    Bin {
                        lo: i as f64 * bin_width,
                        hi: (i + 1) as f64 * bin_width,
                        count,
                    }
                })
                .collect();
        }
        Histogram { bin_width, bins }
    }

    pub fn total(&self) -> u64 {
        self.bins.iter().map(|b| b.count).sum()
    }
}

/// The median of `values` (mean of the middle two for an even count; NaN when empty).
pub fn median(values: &[f64]) -> f64 {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        0.5 * (sorted[n / 2 - 1] + sorted[n / 2])
    }
}

pub fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_are_aligned_and_gaps_kept() {
        let h = Histogram::of([-0.1, 0.1, 0.2, 0.6, f64::NEG_INFINITY], 0.25);
        let counts: Vec<u64> = h.bins.iter().map(|b| b.count).collect();
        assert_eq!(counts, vec![1, 2, 0, 1]);
        assert_eq!(h.bins[0].lo, -0.25);
        assert_eq!(h.bins[3].hi, 0.75);
        assert_eq!(h.total(), 4);
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
    }
}
