//! Feature geometry (METRICS.md): decoder norms, D/E projection (raw, and scaled to the units
//! where E‖x‖² = d), and the max cosine similarity between two dictionaries' decoder
//! directions.

use saelab_sae::kernels::gemm::matmul_nt;
use saelab_sae::{Sae, SaeWeights};
use serde::{Deserialize, Serialize};

use crate::histogram::{mean, median, Histogram};

/// `‖W_dec[i]‖` per latent.
pub fn decoder_norms(w: &SaeWeights) -> Vec<f64> {
    w.w_dec
        .chunks(w.d_in)
        .map(|row| row.iter().map(|&a| (a as f64).powi(2)).sum::<f64>().sqrt())
        .collect()
}

/// `⟨W_dec[i], W_enc[:, i]⟩ / ‖W_enc[:, i]‖²` per latent (NaN for a zero encoder column):
/// the raw ratio, in the units of ‖x‖² of the weights' input.
pub fn de_projection(w: &SaeWeights) -> Vec<f64> {
    w.w_dec
        .chunks(w.d_in)
        .zip(w.w_enc_t.chunks(w.d_in))
        .map(|(dec, enc)| {
            let dot: f64 = dec
                .iter()
                .zip(enc)
                .map(|(a, b)| *a as f64 * *b as f64)
                .sum();
            let enc_sq: f64 = enc.iter().map(|&b| (b as f64).powi(2)).sum();
            dot / enc_sq
        })
        .collect()
}

/// The raw D/E ratio of `sae` in its hook's units. A dictionary in memory with an input
/// scale `s_in` acts as the weights `s_in·W_enc` and `W_dec / s_in` (what saving writes),
/// whose ratio is the stored weights' divided by `s_in²`.
pub fn de_projection_raw(sae: &Sae) -> Vec<f64> {
    let folded = f64::from(sae.input_scale).powi(2);
    let mut raw = de_projection(&sae.weights);
    if folded != 1.0 {
        raw.iter_mut().for_each(|v| *v /= folded);
    }
    raw
}

/// s² = d / E‖x‖² (METRICS.md, "Feature geometry"): the factor that puts a raw D/E ratio in
/// the units where activations have E‖x‖² = d, so that a latent that writes back what it
/// reads sits near 1 whatever the hook's scale.
pub fn de_projection_scale(d: usize, mean_sq_norm: f64) -> f64 {
    d as f64 / mean_sq_norm
}

/// METRICS.md's `de_projection`: each raw ratio times s² = d / E‖x‖².
pub fn de_projection_scaled(raw: &[f64], d: usize, mean_sq_norm: f64) -> Vec<f64> {
    let s2 = de_projection_scale(d, mean_sq_norm);
    raw.iter().map(|r| r * s2).collect()
}

/// Bin width of MCS histograms.
pub const MCS_BIN_WIDTH: f64 = 0.05;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Mcs {
    pub a: String,
    pub b: String,
    pub mean: f64,
    pub median: f64,
    pub histogram: Histogram,
}

/// `max_j cos(W_dec^A[i], W_dec^B[j])` for every latent i of A.
pub fn max_cosine(a: &SaeWeights, b: &SaeWeights) -> Vec<f64> {
    assert_eq!(a.d_in, b.d_in, "dictionaries of different widths");
    let d = a.d_in;
    let unit = |w: &SaeWeights| -> Vec<f32> {
        let mut out = w.w_dec.clone();
        for row in out.chunks_mut(d) {
            let n = row.iter().map(|&x| x * x).sum::<f32>().sqrt();
            if n > 0.0 {
                row.iter_mut().for_each(|x| *x /= n);
            }
        }
        out
    };
    let (ua, ub) = (unit(a), unit(b));
    // Blocks of A's rows keep the similarity matrix at block × d_sae(B).
    const BLOCK: usize = 1024;
    let mut best = Vec::with_capacity(a.d_sae);
    let mut sims = vec![0.0f32; BLOCK.min(a.d_sae) * b.d_sae];
    for block in ua.chunks(BLOCK * d) {
        let rows = block.len() / d;
        let out = &mut sims[..rows * b.d_sae];
        matmul_nt(out, block, &ub, rows, d, b.d_sae, false);
        best.extend(
            out.chunks(b.d_sae)
                .map(|r| r.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64),
        );
    }
    best
}

pub fn mcs(name_a: &str, a: &SaeWeights, name_b: &str, b: &SaeWeights) -> Mcs {
    let best = max_cosine(a, b);
    Mcs {
        a: name_a.to_string(),
        b: name_b.to_string(),
        mean: mean(&best),
        median: median(&best),
        histogram: Histogram::of(best.iter().copied(), MCS_BIN_WIDTH),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weights(d_in: usize, w_enc_t: Vec<f32>, w_dec: Vec<f32>) -> SaeWeights {
        let d_sae = w_dec.len() / d_in;
        let mut w = SaeWeights::zeros(d_in, d_sae);
        w.w_enc_t = w_enc_t;
        w.w_dec = w_dec;
        w
    }

    #[test]
    fn hand_made_geometry() {
        let w = weights(2, vec![2.0, 0.0, 0.0, 1.0], vec![3.0, 4.0, 0.0, 0.5]);
        assert_eq!(decoder_norms(&w), vec![5.0, 0.5]);
        // ⟨(3,4),(2,0)⟩/4 = 1.5; ⟨(0,0.5),(0,1)⟩/1 = 0.5.
        assert_eq!(de_projection(&w), vec![1.5, 0.5]);
    }

    #[test]
    fn the_scaled_projection_is_the_raw_one_times_d_over_the_mean_square_norm() {
        let raw = [1.5, 0.5, -2.0];
        // d = 4, E‖x‖² = 16: s² = 1/4.
        assert_eq!(
            de_projection_scaled(&raw, 4, 16.0),
            vec![0.375, 0.125, -0.5]
        );
        assert_eq!(de_projection_scale(576, 576.0), 1.0);
        let scaled = de_projection_scaled(&raw, 576, 19_600.0);
        for (s, r) in scaled.iter().zip(raw) {
            assert!((s - r * 576.0 / 19_600.0).abs() <= 1e-15 * r.abs());
        }
    }

    #[test]
    fn an_input_scale_in_memory_counts_as_folded_in() {
        let w = weights(2, vec![2.0, 0.0, 0.0, 1.0], vec![3.0, 4.0, 0.0, 0.5]);
        let mut sae = Sae::new(w, saelab_sae::Activation::Relu).unwrap();
        assert_eq!(de_projection_raw(&sae), vec![1.5, 0.5]);
        sae.input_scale = 2.0;
        // W_enc·2 and W_dec/2: the ratio shrinks by 4.
        assert_eq!(de_projection_raw(&sae), vec![0.375, 0.125]);
    }

    #[test]
    fn max_cosine_finds_the_closest_direction() {
        let a = weights(2, vec![0.0; 4], vec![1.0, 0.0, 0.0, 2.0]);
        let b = weights(2, vec![0.0; 6], vec![1.0, 1.0, -1.0, 0.0, 0.0, -3.0]);
        let best = max_cosine(&a, &b);
        let h = 1.0 / 2f64.sqrt();
        assert!((best[0] - h).abs() < 1e-6);
        assert!((best[1] - h).abs() < 1e-6);
        let self_mcs = mcs("a", &a, "a", &a);
        assert!((self_mcs.mean - 1.0).abs() < 1e-6);
    }
}
