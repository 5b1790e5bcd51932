//! Matryoshka's nested reconstruction losses and their gradients (Bussmann et al. 2025,
//! "Learning Multi-Level Features with Matryoshka Sparse Autoencoders"), as SAELens sums them.
//!
//! The dictionary's latents are split into groups at the prefix widths w_1 < … < w_G = d_sae.
//! Level i reconstructs from its prefix only: x̂_i = b_dec + Σ_{j < w_i} f_j W_dec[j], and
//!   L = Σ_{i=1}^{G} (1/B) Σ_t ‖x̂_i,t − x_t‖².
//! The outer level (i = G) is the ordinary reconstruction of `objective.rs`; this file adds the
//! inner ones. With h_i = (2/B)(x̂_i − x) and, for a latent j of group g (w_{g−1} ≤ j < w_g),
//! H_g = Σ_{g ≤ i < G} h_i (the inner levels that contain it):
//!   ∂L_inner/∂W_dec[j] = Σ_t f_tj H_g,t,   ∂L_inner/∂pre_tj = ⟨H_g,t, W_dec[j]⟩ at kept entries,
//! which flow to W_enc and b_enc as in `objective.rs`, and
//!   ∂L_inner/∂b_dec = Σ_t H_1,t − W_enc Σ_t ∂L_inner/∂pre_t.
//! Each group's entries are visited once, so the inner levels cost about one more sparse pass.
//! dictionary_learning weights each level by 1/G and averages; that is this loss times 1/G²,
//! which Adam's updates do not see.

use rayon::prelude::*;

use super::{batchtopk, Architecture, Batch, SpecKind, TrainArchitecture};
use crate::dictionary::Activation;
use crate::error::{Result, SaeError};
use crate::features::SparseFeatures;
use crate::kernels::sparse::{decode, entry_dots, ByLatent};
use crate::kernels::vector::{axpy, dot, sum_f64, sum_rows, weighted_row_sum};
use crate::train::config::TrainConfig;
use crate::train::trainer::Trainer;
use crate::weights::SaeWeights;

/// BatchTopK with nested reconstruction losses; runs as JumpReLU like BatchTopK.
pub(crate) struct Matryoshka {
    pub k: usize,
}

/// Matryoshka's default prefixes: groups of 1/32, 1/16, 1/8 and 1/4 of the latents and the
/// rest (the group fractions of dictionary_learning's Matryoshka example), so the prefixes
/// hold 1/32, 3/32, 7/32, 15/32 and all of the latents. Fewer when the width is too small
/// for a group to be non-empty.
pub fn default_widths(d_sae: usize) -> Vec<usize> {
    let mut widths: Vec<usize> = [1usize, 3, 7, 15]
        .iter()
        .map(|&n| n * d_sae / 32)
        .filter(|&w| w > 0)
        .collect();
    widths.dedup();
    widths.push(d_sae);
    widths.dedup();
    widths
}

pub(crate) const KIND: SpecKind = SpecKind {
    name: "matryoshka",
    about: "BatchTopK whose nested prefixes (`widths`) each learn to reconstruct",
    keys: &["k", "widths", "aux", "aux_warmup"],
    build: |k| TrainArchitecture::MatryoshkaBatchTopK { k },
};

impl Architecture for Matryoshka {
    fn k(&self) -> Option<usize> {
        Some(self.k)
    }

    /// BatchTopK's encoder start, and its prefixes.
    fn configure(&self, cfg: &mut TrainConfig) {
        batchtopk::configure(cfg);
        cfg.matryoshka_widths = default_widths(cfg.d_sae);
    }

    /// BatchTopK's lr.
    fn default_lr(&self, d_sae: usize, total_steps: u64) -> f32 {
        super::topk::default_lr(d_sae, total_steps)
    }

    fn validate(&self, cfg: &TrainConfig) -> Result<()> {
        let widths = &cfg.matryoshka_widths;
        if widths.last() != Some(&cfg.d_sae) {
            return Err(SaeError::config(
                "matryoshka_widths",
                format!(
                    "= {widths:?} must end at d_sae = {} (the whole dictionary)",
                    cfg.d_sae
                ),
            ));
        }
        if widths[0] == 0 || widths.windows(2).any(|w| w[0] >= w[1]) {
            return Err(SaeError::config(
                "matryoshka_widths",
                format!("= {widths:?} must be positive and strictly increasing"),
            ));
        }
        // The skip connection's gradient would miss the nested levels' errors.
        if cfg.skip_connection {
            return Err(SaeError::config(
                "skip_connection",
                "is not supported for Matryoshka transcoders",
            ));
        }
        Ok(())
    }

    fn select(&self, t: &mut Trainer, rows: usize) -> SparseFeatures {
        batchtopk::select_batch(t, rows, self.k)
    }

    fn add_reconstruction_terms(&self, t: &mut Trainer, b: &Batch, f: &SparseFeatures) -> f64 {
        add_inner_levels(
            &t.weights,
            b.x,
            b.xc,
            f,
            &t.cfg.matryoshka_widths,
            t.cfg.apply_b_dec_to_input(),
            &mut t.grads,
        )
    }

    fn inference(&self, t: &Trainer) -> Activation {
        batchtopk::inference(t)
    }
}

/// The kept entries of `f` whose latent lies in `lo..hi`.
fn group(f: &SparseFeatures, lo: usize, hi: usize) -> SparseFeatures {
    SparseFeatures::from_row_fn(f.rows, f.d_sae, |t, idx, val| {
        let (ri, rv) = f.row(t);
        for (&j, &v) in ri.iter().zip(rv) {
            if (lo..hi).contains(&(j as usize)) {
                idx.push(j);
                val.push(v);
            }
        }
    })
}

/// Adds the inner levels' losses (returned: Σ over levels i < G of (1/B) Σ_t ‖x̂_i − x‖²) and
/// their gradients to `grads`, which hold the outer level's. `features` are the kept
/// activations, `xc` the input the encoder saw (x − b_dec when `apply_b_dec_to_input`).
pub fn add_inner_levels(
    w: &SaeWeights,
    x: &[f32],
    xc: &[f32],
    features: &SparseFeatures,
    widths: &[usize],
    apply_b_dec_to_input: bool,
    grads: &mut SaeWeights,
) -> f64 {
    let d = w.d_in;
    let rows = x.len() / d;
    let inner = &widths[..widths.len().saturating_sub(1)];
    if inner.is_empty() || rows == 0 {
        return 0.0;
    }
    let inv_b = 1.0 / rows as f32;
    let groups: Vec<SparseFeatures> = inner
        .iter()
        .scan(0, |lo, &hi| {
            let g = group(features, *lo, hi);
            *lo = hi;
            Some(g)
        })
        .collect();

    // Level by level: x̂_i = x̂_{i−1} + group_i's decode, h_i = (2/B)(x̂_i − x).
    let mut loss = 0.0;
    let mut recon: Vec<f32> = w.b_dec.repeat(rows);
    let mut h: Vec<Vec<f32>> = Vec::with_capacity(groups.len());
    let mut part = vec![0.0f32; rows * d];
    for g in &groups {
        decode(g, None, &w.w_dec, d, None, &mut part);
        recon.par_iter_mut().zip(&part).for_each(|(r, p)| *r += p);
        let e: Vec<f32> = recon.par_iter().zip(x).map(|(r, v)| r - v).collect();
        loss += sum_f64(rows, |t| {
            let r = &e[t * d..(t + 1) * d];
            dot(r, r) as f64
        }) / rows as f64;
        h.push(e.into_par_iter().map(|v| 2.0 * inv_b * v).collect());
    }
    // Suffix sums: H_g = Σ_{i ≥ g} h_i, in place from the last inner level down.
    for i in (0..h.len().saturating_sub(1)).rev() {
        let (head, tail) = h.split_at_mut(i + 1);
        head[i]
            .par_iter_mut()
            .zip(&tail[0])
            .for_each(|(a, b)| *a += b);
    }

    let mut b_enc_extra = vec![0.0f32; w.d_sae];
    for (g, hg) in groups.iter().zip(&h) {
        let dpre = entry_dots(g, hg, &w.w_dec, d);
        let by = ByLatent::new(g);
        by.accumulate(&g.val, hg, d, &mut grads.w_dec, true);
        by.accumulate(&dpre, xc, d, &mut grads.w_enc_t, true);
        for (b, s) in b_enc_extra.iter_mut().zip(by.sums(&dpre)) {
            *b += s;
        }
    }
    for (b, s) in grads.b_enc.iter_mut().zip(&b_enc_extra) {
        *b += s;
    }
    axpy(&mut grads.b_dec, 1.0, &sum_rows(&h[0], d));
    if apply_b_dec_to_input {
        let through_enc = weighted_row_sum(&b_enc_extra, &w.w_enc_t, d);
        axpy(&mut grads.b_dec, -1.0, &through_enc);
    }
    loss
}
