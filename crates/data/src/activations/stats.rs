//! Normalisation statistics of a hook's activations: per-dimension mean and variance and the
//! mean squared norm, so that a trainer can scale inputs to E‖x‖² = d and undo it after.
//!
//! Sums are kept in f64 and added in stream order, so the result is deterministic and a
//! resumed harvest, which restores the sums, ends with the same numbers.

use serde::{Deserialize, Serialize};

/// Running sums over token activations of one hook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NormStats {
    pub tokens: u64,
    pub sum: Vec<f64>,
    pub sum_sq: Vec<f64>,
    pub sum_sq_norm: f64,
}

/// The statistics themselves, as written in a cache manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HookStats {
    pub tokens: u64,
    pub mean: Vec<f64>,
    /// Per-dimension variance about the mean (population variance).
    pub var: Vec<f64>,
    /// E‖x‖².
    pub mean_sq_norm: f64,
    /// E‖x − μ‖²: the total variance, the denominator of fvu.
    pub total_var: f64,
    /// Multiply inputs by this to get E‖x‖² = d: √(d / E‖x‖²).
    pub norm_scale: f64,
}

impl NormStats {
    pub fn new(d: usize) -> Self {
        NormStats {
            tokens: 0,
            sum: vec![0.0; d],
            sum_sq: vec![0.0; d],
            sum_sq_norm: 0.0,
        }
    }

    pub fn d(&self) -> usize {
        self.sum.len()
    }

    pub fn add(&mut self, x: &[f32]) {
        debug_assert_eq!(x.len(), self.d());
        let mut norm = 0.0f64;
        for ((s, q), &v) in self.sum.iter_mut().zip(&mut self.sum_sq).zip(x) {
            let v = f64::from(v);
            *s += v;
            *q += v * v;
            norm += v * v;
        }
        self.sum_sq_norm += norm;
        self.tokens += 1;
    }

    /// `None` before the first token.
    pub fn finish(&self) -> Option<HookStats> {
        if self.tokens == 0 {
            return None;
        }
        let n = self.tokens as f64;
        let mean: Vec<f64> = self.sum.iter().map(|s| s / n).collect();
        let var: Vec<f64> = self
            .sum_sq
            .iter()
            .zip(&mean)
            .map(|(q, m)| (q / n - m * m).max(0.0))
            .collect();
        let mean_sq_norm = self.sum_sq_norm / n;
        let total_var = var.iter().sum();
        let norm_scale = if mean_sq_norm > 0.0 {
            (self.d() as f64 / mean_sq_norm).sqrt()
        } else {
            1.0
        };
        Some(HookStats {
            tokens: self.tokens,
            mean,
            var,
            mean_sq_norm,
            total_var,
            norm_scale,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        let mut s = NormStats::new(2);
        for x in [[1.0f32, 2.0], [3.0, 2.0], [5.0, 2.0]] {
            s.add(&x);
        }
        let h = s.finish().unwrap();
        assert_eq!(h.mean, vec![3.0, 2.0]);
        // Population variance of 1, 3, 5 is 8/3; the constant dimension has none.
        assert!((h.var[0] - 8.0 / 3.0).abs() < 1e-12);
        assert_eq!(h.var[1], 0.0);
        // ‖x‖² = 5, 13, 29.
        assert!((h.mean_sq_norm - 47.0 / 3.0).abs() < 1e-12);
        assert!((h.total_var - 8.0 / 3.0).abs() < 1e-12);
        assert!((h.norm_scale - (2.0 * 3.0 / 47.0f64).sqrt()).abs() < 1e-12);
        assert!(NormStats::new(3).finish().is_none());
    }
}
