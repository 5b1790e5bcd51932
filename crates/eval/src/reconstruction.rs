//! Reconstruction metrics (METRICS.md, "Reconstruction"), accumulated in f64 over batches.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReconstructionMetrics {
    pub mse: f64,
    pub sse_per_token: f64,
    pub l2_loss: f64,
    pub fvu: f64,
    pub variance_explained: f64,
    pub cossim: f64,
    pub relative_norm: f64,
    pub shrinkage: f64,
    /// Peer variant: per token 1 − ‖x − x̂‖²/‖x − μ_batch‖², averaged over tokens, with
    /// μ_batch the mean of each forward batch.
    pub explained_variance_legacy: f64,
}

/// Sums over the measured positions, enough for every reconstruction metric.
#[derive(Clone, Debug)]
pub struct ReconstructionSums {
    d: usize,
    tokens: u64,
    sse: f64,
    l2: f64,
    cos: f64,
    relative_norm: f64,
    hat_sq: f64,
    dot: f64,
    x_sq: f64,
    x_sum: Vec<f64>,
    legacy: f64,
}

impl ReconstructionSums {
    pub fn new(d: usize) -> Self {
        ReconstructionSums {
            d,
            tokens: 0,
            sse: 0.0,
            l2: 0.0,
            cos: 0.0,
            relative_norm: 0.0,
            hat_sq: 0.0,
            dot: 0.0,
            x_sq: 0.0,
            x_sum: vec![0.0; d],
            legacy: 0.0,
        }
    }

    /// Adds one forward batch: `x` and `x_hat` are `[rows, d]`; rows with `measured[t]`
    /// false are skipped.
    pub fn add_batch(&mut self, x: &[f32], x_hat: &[f32], measured: &[bool]) {
        let d = self.d;
        let rows: Vec<usize> = (0..measured.len()).filter(|&t| measured[t]).collect();
        if rows.is_empty() {
            return;
        }
        let mut batch_mean = vec![0.0f64; d];
        for &t in &rows {
            for (m, &v) in batch_mean.iter_mut().zip(&x[t * d..(t + 1) * d]) {
                *m += v as f64;
            }
        }
        for (s, m) in self.x_sum.iter_mut().zip(batch_mean.iter_mut()) {
            *s += *m;
            *m /= rows.len() as f64;
        }
        for &t in &rows {
            let (xs, hs) = (&x[t * d..(t + 1) * d], &x_hat[t * d..(t + 1) * d]);
            let (mut err, mut xx, mut hh, mut xh, mut centred) = (0.0, 0.0, 0.0, 0.0, 0.0);
            for j in 0..d {
                let (a, b) = (xs[j] as f64, hs[j] as f64);
                err += (a - b) * (a - b);
                xx += a * a;
                hh += b * b;
                xh += a * b;
                centred += (a - batch_mean[j]) * (a - batch_mean[j]);
            }
            self.tokens += 1;
            self.sse += err;
            self.l2 += err.sqrt();
            self.x_sq += xx;
            self.hat_sq += hh;
            self.dot += xh;
            // cos(x, 0) and ‖x̂‖/‖0‖ are undefined; such tokens count as 0.
            if xx > 0.0 && hh > 0.0 {
                self.cos += xh / (xx.sqrt() * hh.sqrt());
            }
            if xx > 0.0 {
                self.relative_norm += (hh / xx).sqrt();
            }
            if centred > 0.0 {
                self.legacy += 1.0 - err / centred;
            }
        }
    }

    pub fn tokens(&self) -> u64 {
        self.tokens
    }

    /// Σ_t ‖x_t − μ‖² with μ the mean over every measured token.
    pub fn total_variance(&self) -> f64 {
        let n = self.tokens as f64;
        let mean_sq: f64 = self.x_sum.iter().map(|s| (s / n) * (s / n)).sum();
        self.x_sq - n * mean_sq
    }

    /// E‖x‖² over every measured token.
    pub fn mean_sq_norm(&self) -> f64 {
        self.x_sq / self.tokens as f64
    }

    /// μ over every measured token.
    pub fn mean(&self) -> Vec<f64> {
        let n = self.tokens as f64;
        self.x_sum.iter().map(|s| s / n).collect()
    }

    pub fn metrics(&self) -> ReconstructionMetrics {
        let n = self.tokens as f64;
        let fvu = self.sse / self.total_variance();
        ReconstructionMetrics {
            mse: self.sse / (n * self.d as f64),
            sse_per_token: self.sse / n,
            l2_loss: self.l2 / n,
            fvu,
            variance_explained: 1.0 - fvu,
            cossim: self.cos / n,
            relative_norm: self.relative_norm / n,
            shrinkage: self.hat_sq / self.dot,
            explained_variance_legacy: self.legacy / n,
        }
    }
}

/// Σ‖x‖² over the measured positions of activations that are not compared with anything (a
/// transcoder's input), summed as `ReconstructionSums` sums its x.
#[derive(Clone, Debug)]
pub struct SquaredNormSums {
    d: usize,
    tokens: u64,
    sum: f64,
}

impl SquaredNormSums {
    pub fn new(d: usize) -> Self {
        SquaredNormSums {
            d,
            tokens: 0,
            sum: 0.0,
        }
    }

    /// Adds the rows of `x` (`[rows, d]`) with `measured[t]` true.
    pub fn add_batch(&mut self, x: &[f32], measured: &[bool]) {
        for (row, _) in x.chunks(self.d).zip(measured).filter(|(_, m)| **m) {
            self.sum += row.iter().map(|&a| (a as f64) * (a as f64)).sum::<f64>();
            self.tokens += 1;
        }
    }

    /// E‖x‖² over the measured rows.
    pub fn mean(&self) -> f64 {
        self.sum / self.tokens as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_made_case() {
        // x = (1,0), (3,0); x̂ = (1,1), (2,0). μ = (2,0).
        let x = [1.0, 0.0, 3.0, 0.0];
        let x_hat = [1.0, 1.0, 2.0, 0.0];
        let mut s = ReconstructionSums::new(2);
        s.add_batch(&x, &x_hat, &[true, true]);
        let m = s.metrics();
        // Errors: 1 and 1 → sse 2; Σ‖x − μ‖² = 1 + 1 = 2.
        assert_eq!(m.sse_per_token, 1.0);
        assert_eq!(m.mse, 0.5);
        assert_eq!(m.l2_loss, 1.0);
        assert_eq!(m.fvu, 1.0);
        assert_eq!(m.variance_explained, 0.0);
        let cos0 = 1.0 / 2f64.sqrt();
        assert!((m.cossim - (cos0 + 1.0) / 2.0).abs() < 1e-15);
        assert!((m.relative_norm - (2f64.sqrt() + 2.0 / 3.0) / 2.0).abs() < 1e-15);
        // γ = (2 + 4) / (1 + 6).
        assert!((m.shrinkage - 6.0 / 7.0).abs() < 1e-15);
        // Legacy: each token 1 − 1/1 = 0.
        assert_eq!(m.explained_variance_legacy, 0.0);
    }

    #[test]
    fn fvu_subtracts_the_mean() {
        // Activations far from the origin: variance about zero would make fvu tiny.
        let x = [10.0, 10.0, 12.0, 10.0];
        let x_hat = [11.0, 10.0, 11.0, 10.0];
        let mut s = ReconstructionSums::new(2);
        s.add_batch(&x, &x_hat, &[true, true]);
        let m = s.metrics();
        assert_eq!(m.fvu, 1.0); // sse 2 / Σ‖x − μ‖² 2
        let about_zero = 2.0 / (200.0 + 244.0);
        assert!((m.fvu - about_zero).abs() > 0.9);
    }

    #[test]
    fn unmeasured_rows_are_skipped_and_batches_add_up() {
        let mut one = ReconstructionSums::new(1);
        one.add_batch(&[1.0, 99.0, 3.0], &[1.5, 0.0, 2.0], &[true, false, true]);
        let mut two = ReconstructionSums::new(1);
        two.add_batch(&[1.0], &[1.5], &[true]);
        two.add_batch(&[3.0], &[2.0], &[true]);
        assert_eq!(one.tokens(), 2);
        assert_eq!(one.metrics().fvu, two.metrics().fvu);
        assert_eq!(one.mean(), vec![2.0]);
        assert_eq!(one.mean_sq_norm(), 5.0); // (1 + 9) / 2
    }

    #[test]
    fn squared_norms_agree_with_the_reconstruction_sums() {
        let x = [1.0, 2.0, 99.0, 99.0, 0.5, -3.0];
        let measured = [true, false, true];
        let mut rec = ReconstructionSums::new(2);
        rec.add_batch(&x, &[0.0; 6], &measured);
        let mut norms = SquaredNormSums::new(2);
        norms.add_batch(&x, &measured);
        assert_eq!(norms.mean(), (5.0 + 9.25) / 2.0);
        assert_eq!(norms.mean(), rec.mean_sq_norm());
    }
}
