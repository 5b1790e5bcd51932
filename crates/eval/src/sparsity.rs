//! Sparsity metrics (METRICS.md, "Sparsity"): L0, L1, per-latent density and dead latents
//! over a stated window of tokens.

use saelab_sae::SparseFeatures;
use serde::{Deserialize, Serialize};

use crate::histogram::{Bin, Histogram};

/// Width of the log10-density bins.
pub const DENSITY_BIN_WIDTH: f64 = 0.25;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DensityHistogram {
    pub bin_width: f64,
    pub bins: Vec<Bin>,
    /// Latents that never fired in the window, counted apart (log10 0 has no bin).
    pub dead: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SparsityMetrics {
    pub l0: f64,
    pub l1: f64,
    pub dead: u64,
    pub alive_pct: f64,
    /// The tokens over which density and deadness were judged.
    pub dead_window_tokens: u64,
    pub density_histogram: DensityHistogram,
    pub l0_histogram: Histogram,
}

#[derive(Clone, Debug)]
pub struct SparsitySums {
    window: u64,
    window_seen: u64,
    fires: Vec<u64>,
    tokens: u64,
    l0: f64,
    l1: f64,
    /// `l0_counts[n]`: tokens with exactly n active latents.
    l0_counts: Vec<u64>,
}

impl SparsitySums {
    /// Density and deadness are judged on the first `window` measured tokens.
    pub fn new(d_sae: usize, window: u64) -> Self {
        SparsitySums {
            window,
            window_seen: 0,
            fires: vec![0; d_sae],
            tokens: 0,
            l0: 0.0,
            l1: 0.0,
            l0_counts: Vec::new(),
        }
    }

    pub fn add_batch(&mut self, features: &SparseFeatures, measured: &[bool]) {
        for (t, _) in measured.iter().enumerate().filter(|(_, m)| **m) {
            let (idx, val) = features.row(t);
            let in_window = self.window_seen < self.window;
            let mut active = 0usize;
            for (&i, &v) in idx.iter().zip(val) {
                if v != 0.0 {
                    active += 1;
                    self.l1 += v.abs() as f64;
                    if in_window {
                        self.fires[i as usize] += 1;
                    }
                }
            }
            if in_window {
                self.window_seen += 1;
            }
            self.tokens += 1;
            self.l0 += active as f64;
            if self.l0_counts.len() <= active {
                self.l0_counts.resize(active + 1, 0);
            }
            self.l0_counts[active] += 1;
        }
    }

    /// Fraction of the window's tokens where each latent fired.
    pub fn density(&self) -> Vec<f64> {
        let n = self.window_seen.max(1) as f64;
        self.fires.iter().map(|&c| c as f64 / n).collect()
    }

    pub fn metrics(&self) -> SparsityMetrics {
        let n = self.tokens as f64;
        let density = self.density();
        let dead = density.iter().filter(|d| **d == 0.0).count() as u64;
        let alive = density.iter().filter(|d| **d > 0.0).map(|d| d.log10());
        SparsityMetrics {
            l0: self.l0 / n,
            l1: self.l1 / n,
            dead,
            alive_pct: 100.0 * (1.0 - dead as f64 / self.fires.len() as f64),
            dead_window_tokens: self.window_seen,
            density_histogram: DensityHistogram {
                bin_width: DENSITY_BIN_WIDTH,
                bins: Histogram::of(alive, DENSITY_BIN_WIDTH).bins,
                dead,
            },
            l0_histogram: self.l0_histogram(),
        }
    }

    /// Per-token L0 in bins of one latent, or of a power of two when that would exceed 100
    /// bins.
    fn l0_histogram(&self) -> Histogram {
        let top = self.l0_counts.len();
        let mut width = 1usize;
        while top.div_ceil(width) > 100 {
            width *= 2;
        }
        let first = self.l0_counts.iter().position(|&c| c > 0).unwrap_or(0) / width;
        let bins = (first..top.div_ceil(width))
            .map(|b| Bin {
                lo: (b * width) as f64,
                hi: ((b + 1) * width) as f64,
                count: self.l0_counts[b * width..((b + 1) * width).min(top)]
                    .iter()
                    .sum(),
            })
            .collect();
        Histogram {
            bin_width: width as f64,
            bins,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn features(rows: &[&[(u32, f32)]], d_sae: usize) -> SparseFeatures {
        let mut dense = vec![0.0; rows.len() * d_sae];
        for (t, row) in rows.iter().enumerate() {
            for &(i, v) in row.iter() {
                dense[t * d_sae + i as usize] = v;
            }
        }
        SparseFeatures::from_dense(&dense, rows.len(), d_sae)
    }

    #[test]
    fn hand_made_case() {
        let f = features(&[&[(0, 1.0), (2, -2.0)], &[(0, 0.5)], &[], &[(3, 4.0)]], 4);
        let mut s = SparsitySums::new(4, 1_000_000);
        s.add_batch(&f, &[true, true, true, false]);
        let m = s.metrics();
        assert_eq!(m.l0, 1.0);
        assert_eq!(m.l1, 3.5 / 3.0);
        assert_eq!(s.density(), vec![2.0 / 3.0, 0.0, 1.0 / 3.0, 0.0]);
        assert_eq!(m.dead, 2);
        assert_eq!(m.alive_pct, 50.0);
        assert_eq!(m.dead_window_tokens, 3);
        assert_eq!(m.density_histogram.dead, 2);
        let counts: Vec<u64> = m.l0_histogram.bins.iter().map(|b| b.count).collect();
        assert_eq!(counts, vec![1, 1, 1]);
    }

    #[test]
    fn the_dead_count_depends_on_the_window() {
        // Latent 1 first fires at the third token.
        let f = features(&[&[(0, 1.0)], &[(0, 1.0)], &[(1, 1.0)]], 2);
        let mut short = SparsitySums::new(2, 2);
        short.add_batch(&f, &[true; 3]);
        let mut long = SparsitySums::new(2, 3);
        long.add_batch(&f, &[true; 3]);
        assert_eq!(
            (short.metrics().dead, short.metrics().dead_window_tokens),
            (1, 2)
        );
        assert_eq!(
            (long.metrics().dead, long.metrics().dead_window_tokens),
            (0, 3)
        );
    }
}
