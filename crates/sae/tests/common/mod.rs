//! Synthetic activations from a known dictionary, shared by the integration tests.
#![allow(dead_code)]

use saelab_sae::kernels::vector::{dot, norm};
use saelab_sae::rng::SplitMix64;

/// `n` random unit directions in R^d, row-major `[n, d]`.
pub fn random_directions(n: usize, d: usize, seed: u64) -> Vec<f32> {
    let mut r = SplitMix64::new(seed);
    let mut out = vec![0.0f32; n * d];
    for row in out.chunks_exact_mut(d) {
        row.iter_mut().for_each(|v| *v = r.normal());
        let n = norm(row);
        row.iter_mut().for_each(|v| *v /= n);
    }
    out
}

/// Samples that are each a sum of `per_sample` distinct true directions with magnitudes
/// uniform in 0.5..1.5.
pub struct SparseSource {
    pub truth: Vec<f32>,
    pub n_true: usize,
    pub d: usize,
    pub per_sample: usize,
    rng: SplitMix64,
}

impl SparseSource {
    pub fn new(n_true: usize, d: usize, per_sample: usize, seed: u64) -> Self {
        SparseSource {
            truth: random_directions(n_true, d, seed),
            n_true,
            d,
            per_sample,
            rng: SplitMix64::new(seed ^ 0x5EED),
        }
    }

    pub fn batch(&mut self, rows: usize) -> Vec<f32> {
        let d = self.d;
        let mut out = vec![0.0f32; rows * d];
        let mut chosen = Vec::with_capacity(self.per_sample);
        for row in out.chunks_exact_mut(d) {
            chosen.clear();
            while chosen.len() < self.per_sample {
                let i = self.rng.below(self.n_true as u64) as usize;
                if !chosen.contains(&i) {
                    chosen.push(i);
                }
            }
            for &i in &chosen {
                let m = self.rng.uniform(0.5, 1.5);
                for (o, t) in row.iter_mut().zip(&self.truth[i * d..(i + 1) * d]) {
                    *o += m * t;
                }
            }
        }
        out
    }
}

/// For each true direction, the largest cosine with any learned decoder row.
pub fn max_cosines(truth: &[f32], learned: &[f32], d: usize) -> Vec<f32> {
    let norms: Vec<f32> = learned.chunks_exact(d).map(norm).collect();
    truth
        .chunks_exact(d)
        .map(|t| {
            learned
                .chunks_exact(d)
                .zip(&norms)
                .map(|(l, n)| if *n > 0.0 { dot(t, l) / n } else { 0.0 })
                .fold(f32::MIN, f32::max)
        })
        .collect()
}

/// Fraction of true directions recovered with cosine above `min_cos`.
pub fn recovered_fraction(truth: &[f32], learned: &[f32], d: usize, min_cos: f32) -> f64 {
    let cos = max_cosines(truth, learned, d);
    cos.iter().filter(|c| **c > min_cos).count() as f64 / cos.len() as f64
}

/// The largest |ours − theirs| over the largest |theirs|: an error relative to the tensor.
pub fn max_rel(ours: &[f32], theirs: &[f32]) -> f32 {
    assert_eq!(ours.len(), theirs.len());
    let scale = theirs.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(scale > 0.0, "a zero reference would prove nothing");
    ours.iter()
        .zip(theirs)
        .fold(0.0f32, |m, (a, b)| m.max((a - b).abs() / scale))
}
