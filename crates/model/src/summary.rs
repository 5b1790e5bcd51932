//! Summary statistics of a hook's activations over many tokens.

use serde::Serialize;

/// Running sums over tokens of one hook's `[tokens, d]` activations.
#[derive(Clone, Debug)]
pub struct ActivationStats {
    count: usize,
    norm_sum: f64,
    sum: Vec<f64>,
    sum_sq: Vec<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Quantiles {
    pub min: f64,
    pub p05: f64,
    pub p25: f64,
    pub median: f64,
    pub p75: f64,
    pub p95: f64,
    pub max: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct ActivationSummary {
    pub tokens: usize,
    pub d: usize,
    pub mean_norm: f64,
    /// Quantiles over dimensions of each dimension's mean.
    pub dim_mean: Quantiles,
    /// Quantiles over dimensions of each dimension's standard deviation.
    pub dim_std: Quantiles,
}

impl ActivationStats {
    pub fn new(d: usize) -> Self {
        ActivationStats {
            count: 0,
            norm_sum: 0.0,
            sum: vec![0.0; d],
            sum_sq: vec![0.0; d],
        }
    }

    /// Adds one token's activation vector.
    pub fn add(&mut self, x: &[f32]) {
        let mut sq = 0.0f64;
        for (i, &v) in x.iter().enumerate() {
            let v = v as f64;
            self.sum[i] += v;
            self.sum_sq[i] += v * v;
            sq += v * v;
        }
        self.norm_sum += sq.sqrt();
        self.count += 1;
    }

    pub fn summary(&self) -> Option<ActivationSummary> {
        if self.count == 0 {
            return None;
        }
        let n = self.count as f64;
        let means: Vec<f64> = self.sum.iter().map(|s| s / n).collect();
        let stds: Vec<f64> = self
            .sum_sq
            .iter()
            .zip(&means)
            .map(|(sq, m)| (sq / n - m * m).max(0.0).sqrt())
            .collect();
        Some(ActivationSummary {
            tokens: self.count,
            d: self.sum.len(),
            mean_norm: self.norm_sum / n,
            dim_mean: quantiles(means),
            dim_std: quantiles(stds),
        })
    }
}

/// Quantiles with linear interpolation between order statistics.
pub fn quantiles(mut v: Vec<f64>) -> Quantiles {
    v.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| -> f64 {
        if v.is_empty() {
            return f64::NAN;
        }
        let pos = q * (v.len() - 1) as f64;
        let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
        v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
    };
    Quantiles {
        min: at(0.0),
        p05: at(0.05),
        p25: at(0.25),
        median: at(0.5),
        p75: at(0.75),
        p95: at(0.95),
        max: at(1.0),
    }
}
