//! The four tensors every dictionary here shares, and the encoder's pre-activations.
//!
//! The encoder is kept as one row per latent, `w_enc_t [d_sae, d_in]` (SAELens's `W_enc`
//! transposed): the sparse gradient then writes each active latent's encoder vector as one
//! contiguous row, and the dense product reads it as a transposed view at no cost. Files
//! use SAELens's `[d_in, d_sae]`; the transpose happens only on save and load.

use rayon::prelude::*;

use crate::error::{Result, SaeError};
use crate::kernels::gemm::matmul_nt;
use crate::kernels::vector::norm;
use crate::rng::SplitMix64;

#[derive(Clone, Debug, PartialEq)]
pub struct SaeWeights {
    pub d_in: usize,
    pub d_sae: usize,
    /// Encoder, one row per latent: `[d_sae, d_in]`.
    pub w_enc_t: Vec<f32>,
    pub b_enc: Vec<f32>,
    /// Decoder, one row per latent: `[d_sae, d_in]`.
    pub w_dec: Vec<f32>,
    pub b_dec: Vec<f32>,
}

impl SaeWeights {
    /// Sizes only, every tensor empty: for loaders that read each tensor from a file whose
    /// shape is checked against `d_in` and `d_sae` first, so a width from a config file is
    /// never allocated before the file shows it holds that much.
    pub fn unfilled(d_in: usize, d_sae: usize) -> Self {
        SaeWeights {
            d_in,
            d_sae,
            w_enc_t: Vec::new(),
            b_enc: Vec::new(),
            w_dec: Vec::new(),
            b_dec: Vec::new(),
        }
    }

    pub fn zeros(d_in: usize, d_sae: usize) -> Self {
        SaeWeights {
            d_in,
            d_sae,
            w_enc_t: vec![0.0; d_in * d_sae],
            b_enc: vec![0.0; d_sae],
            w_dec: vec![0.0; d_in * d_sae],
            b_dec: vec![0.0; d_in],
        }
    }

    /// Decoder rows in random directions with norm `row_norm`, the encoder their transpose
    /// (each latent starts reading the direction it writes), zero biases. One generator per
    /// row, forked from the seed, so the result does not depend on the thread schedule.
    pub fn init_tied(d_in: usize, d_sae: usize, row_norm: f32, seed: u64) -> Self {
        let mut w = SaeWeights::zeros(d_in, d_sae);
        let base = SplitMix64::new(seed);
        w.w_dec
            .par_chunks_mut(d_in)
            .enumerate()
            .for_each(|(j, row)| {
                let mut r = base.fork(j as u64);
                loop {
                    row.iter_mut().for_each(|v| *v = r.normal());
                    let n = norm(row);
                    if n > 1e-6 {
                        row.iter_mut().for_each(|v| *v *= row_norm / n);
                        break;
                    }
                }
            });
        w.w_enc_t.copy_from_slice(&w.w_dec);
        w
    }

    /// SAELens's `W_enc [d_in, d_sae]`.
    pub fn w_enc(&self) -> Vec<f32> {
        transpose(&self.w_enc_t, self.d_sae, self.d_in)
    }

    pub fn set_w_enc(&mut self, w_enc: &[f32]) {
        self.w_enc_t = transpose(w_enc, self.d_in, self.d_sae);
    }

    /// Checks that a batch is a whole number of finite rows of width `d_in`; returns the rows.
    pub fn batch_rows(&self, x: &[f32]) -> Result<usize> {
        if x.is_empty() || !x.len().is_multiple_of(self.d_in) {
            return Err(SaeError::Input(format!(
                "a batch of {} floats is not a whole, non-zero number of rows of d_in = {}",
                x.len(),
                self.d_in
            )));
        }
        if let Some(i) = x.iter().position(|v| !v.is_finite()) {
            return Err(SaeError::Input(format!(
                "row {} holds a non-finite value ({})",
                i / self.d_in,
                x[i]
            )));
        }
        Ok(x.len() / self.d_in)
    }

    /// `x − b_dec` (or `x` itself when the bias is not applied to the input).
    pub fn centered(&self, x: &[f32], apply_b_dec: bool) -> Vec<f32> {
        let mut xc = x.to_vec();
        if apply_b_dec {
            xc.par_chunks_mut(self.d_in)
                .for_each(|row| row.iter_mut().zip(&self.b_dec).for_each(|(v, b)| *v -= b));
        }
        xc
    }

    /// `pre = xc · W_enc + b_enc` into `out [rows, d_sae]` (resized as needed).
    pub fn pre_activations(&self, xc: &[f32], out: &mut Vec<f32>) {
        let rows = xc.len() / self.d_in;
        if out.len() != rows * self.d_sae {
            out.resize(rows * self.d_sae, 0.0);
        }
        matmul_nt(out, xc, &self.w_enc_t, rows, self.d_in, self.d_sae, false);
        out.par_chunks_mut(self.d_sae)
            .for_each(|row| row.iter_mut().zip(&self.b_enc).for_each(|(v, b)| *v += b));
    }

    /// Norm of each decoder row.
    pub fn decoder_norms(&self) -> Vec<f32> {
        self.w_dec.par_chunks(self.d_in).map(norm).collect()
    }
}

/// Row-major `[rows, cols]` → row-major `[cols, rows]`, in cache-sized tiles.
pub fn transpose(a: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    const TILE: usize = 32;
    let mut out = vec![0.0f32; rows * cols];
    out.par_chunks_mut(TILE * rows.max(1))
        .enumerate()
        .for_each(|(cb, block)| {
            let c0 = cb * TILE;
            let cn = block.len() / rows.max(1);
            for r0 in (0..rows).step_by(TILE) {
                for c in c0..c0 + cn {
                    for r in r0..(r0 + TILE).min(rows) {
                        block[(c - c0) * rows + r] = a[r * cols + c];
                    }
                }
            }
        });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transpose_round_trips() {
        let (r, c) = (70, 45);
        let a: Vec<f32> = (0..r * c).map(|i| i as f32).collect();
        let t = transpose(&a, r, c);
        assert_eq!(t[3 * r + 5], a[5 * c + 3]);
        assert_eq!(transpose(&t, c, r), a);
    }

    #[test]
    fn tied_init_has_unit_rows_and_is_seeded() {
        let w = SaeWeights::init_tied(16, 40, 1.0, 9);
        for n in w.decoder_norms() {
            assert!((n - 1.0).abs() < 1e-5);
        }
        assert_eq!(w.w_enc_t, w.w_dec);
        assert_eq!(w, SaeWeights::init_tied(16, 40, 1.0, 9));
        assert_ne!(w.w_dec, SaeWeights::init_tied(16, 40, 1.0, 10).w_dec);
    }
}
