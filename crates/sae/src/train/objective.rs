//! Losses of the training objectives and their hand-derived gradients.
//!
//! With e = x̂ − x for a batch of B rows:
//! - reconstruction  L_rec = (1/B) Σ_t ‖e_t‖²,   g_t = ∂L/∂x̂_t = (2/B) e_t
//! - AuxK            L_aux = (c/B) Σ_t ‖ê_t − r_t‖², ê_t = Σ_{j ∈ aux_t} a_tj W_dec[j],
//!   r_t = −e_t held fixed (no gradient), c = α · min(n_dead / k_aux, 1)
//! - L1              L_l1 = (λ/B) Σ_t Σ_j f_tj · n_j, n_j = 1 or ‖W_dec[j]‖ (April)
//! - downstream      L_down(x̂), e.g. the model's KL with x̂ spliced in, given with its own
//!   gradient ∂L_down/∂x̂ (end-to-end training); then g_t = ∂L_down/∂x̂_t + c_mse (2/B) e_t
//!
//! With pre = (x − b_dec) W_enc + b_enc and f = pre at the kept entries (all positive):
//! ∂L/∂W_dec[j] = Σ_t f_tj g_t (+ aux, + April's (λ/B)(Σ_t f_tj) W_dec[j]/n_j),
//! ∂L/∂pre_tj = ⟨g_t, W_dec[j]⟩ + λ n_j / B at kept entries, 0 elsewhere,
//! ∂L/∂W_enc[:, j] = Σ_t ∂L/∂pre_tj (x_t − b_dec),  ∂L/∂b_enc = Σ_t ∂L/∂pre_t,
//! ∂L/∂b_dec = Σ_t g_t − W_enc ∂L/∂b_enc.
//! Only kept entries carry gradient, so the sparse path costs O(nnz · d_in) besides the
//! encoder product; the dense path (ReLU while most latents fire) uses four GEMMs instead.

use rayon::prelude::*;

use crate::error::{Result, SaeError};
use crate::features::SparseFeatures;
use crate::kernels::gemm::{matmul_nn, matmul_nt, matmul_tn};
use crate::kernels::sparse::{self, ByLatent};
use crate::kernels::vector::{axpy, dot, sum_f64, sum_rows, weighted_row_sum};
use crate::weights::SaeWeights;

/// AuxK: features chosen among dead latents, and its weight c = α · min(n_dead / k_aux, 1).
pub struct AuxTerm<'a> {
    pub features: &'a SparseFeatures,
    pub coefficient: f32,
}

#[derive(Clone, Copy, Debug)]
pub struct L1Term {
    pub coefficient: f32,
    /// Weight each latent's L1 by its decoder row norm (the April update).
    pub weighted_by_decoder_norm: bool,
}

/// A loss measured downstream of the reconstruction: from x̂ `[rows, d_in]` in the hook's own
/// units, the loss and ∂L/∂x̂ in the same units.
pub type DownstreamLoss<'a> = dyn Fn(&[f32]) -> std::result::Result<(f64, Vec<f32>), String> + 'a;

/// End-to-end training's term: the downstream loss in place of (or beside) the
/// reconstruction's MSE.
#[derive(Clone, Copy)]
pub struct DownstreamTerm<'a> {
    pub loss: &'a DownstreamLoss<'a>,
    /// Training units per hook unit (the trainer's input scale): x̂_hook = x̂ / scale.
    pub input_scale: f32,
    /// Weight of the reconstruction MSE kept beside it (0: the downstream loss alone).
    pub mse_coefficient: f32,
}

pub struct Objective<'a> {
    /// The kept activations (values are `pre` at the kept entries).
    pub features: &'a SparseFeatures,
    pub aux: Option<AuxTerm<'a>>,
    pub l1: Option<L1Term>,
    pub apply_b_dec_to_input: bool,
    pub downstream: Option<DownstreamTerm<'a>>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LossParts {
    /// Reconstruction (with Matryoshka, summed over its nested levels).
    pub recon: f64,
    /// AuxK, Gated's aux reconstruction, or ghost grads.
    pub aux: f64,
    pub l1: f64,
    /// JumpReLU's L0 penalty.
    pub l0: f64,
    /// The downstream loss of end-to-end training (0 without one).
    pub downstream: f64,
    /// Σ_t ‖x_t − x̂_t‖² over the batch.
    pub sse: f64,
}

impl LossParts {
    pub fn total(&self) -> f64 {
        self.recon + self.aux + self.l1 + self.l0 + self.downstream
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// Gathers and scatters over the kept entries only.
    Sparse,
    /// Dense products with the feature matrix materialised.
    Dense,
}

/// Reusable `[rows, d_sae]` buffers for the dense path.
#[derive(Default)]
pub struct Scratch {
    pub(super) f: Vec<f32>,
    pub(super) df: Vec<f32>,
}

/// `x − b_dec` (or `x`) and the pre-activations of a batch.
pub fn forward_pre(w: &SaeWeights, x: &[f32], apply_b_dec: bool, pre: &mut Vec<f32>) -> Vec<f32> {
    let xc = w.centered(x, apply_b_dec);
    w.pre_activations(&xc, pre);
    xc
}

/// Loss parts and gradients (written into `grads`, same layout as the weights) of the
/// objective on batch `x` with centred input `xc`. Returns the reconstruction too. Fails only
/// when the downstream loss does.
pub fn loss_and_grads(
    w: &SaeWeights,
    x: &[f32],
    xc: &[f32],
    obj: &Objective,
    path: Path,
    scratch: &mut Scratch,
    grads: &mut SaeWeights,
) -> Result<(LossParts, Vec<f32>)> {
    let (d, f_n) = (w.d_in, w.d_sae);
    let rows = x.len() / d;
    let inv_b = 1.0 / rows as f32;
    let feats = obj.features;
    let mut parts = LossParts::default();

    // Per-latent L1 weights n_j / B · λ, and the decoder norms when April needs them.
    let norms = match obj.l1 {
        Some(l1) if l1.weighted_by_decoder_norm => Some(w.decoder_norms()),
        _ => None,
    };
    let l1_weight: Option<Vec<f32>> = obj.l1.map(|l1| {
        let c = l1.coefficient * inv_b;
        match &norms {
            Some(n) => n.iter().map(|v| c * v).collect(),
            None => vec![c; f_n],
        }
    });

    // Reconstruction x̂ = f W_dec + b_dec.
    let mut recon = vec![0.0f32; rows * d];
    if path == Path::Dense {
        scatter_dense(feats, &feats.val, &mut scratch.f);
        matmul_nn(&mut recon, &scratch.f, &w.w_dec, rows, f_n, d, false);
        recon.par_chunks_mut(d).for_each(|r| axpy(r, 1.0, &w.b_dec));
    } else {
        sparse::decode(feats, None, &w.w_dec, d, Some(&w.b_dec), &mut recon);
    }

    // e = x̂ − x; g = (2/B) e.
    let e: Vec<f32> = recon.par_iter().zip(x).map(|(a, b)| a - b).collect();
    parts.sse = sum_f64(rows, |t| {
        let r = &e[t * d..(t + 1) * d];
        dot(r, r) as f64
    });
    parts.recon = parts.sse / rows as f64;
    let mut g: Vec<f32> = e.par_iter().map(|v| 2.0 * inv_b * v).collect();
    if let Some(down) = &obj.downstream {
        parts.recon *= down.mse_coefficient as f64;
        let (loss, g_down) = downstream_gradient(down, &recon)?;
        parts.downstream = loss;
        let c = down.mse_coefficient;
        g.par_iter_mut()
            .zip(&g_down)
            .for_each(|(gi, di)| *gi = c * *gi + di);
    }

    // Gradient at the kept entries, and the weight gradients of the main term.
    let col_sums: Vec<f32>;
    match path {
        Path::Sparse => {
            let mut dpre = sparse::entry_dots(feats, &g, &w.w_dec, d);
            if let Some(lw) = &l1_weight {
                for (dp, &j) in dpre.iter_mut().zip(&feats.idx) {
                    *dp += lw[j as usize];
                }
                parts.l1 = sum_f64(rows, |t| {
                    let (idx, val) = feats.row(t);
                    idx.iter()
                        .zip(val)
                        .map(|(&j, &v)| (v * lw[j as usize]) as f64)
                        .sum()
                });
            }
            let by = ByLatent::new(feats);
            by.accumulate(&feats.val, &g, d, &mut grads.w_dec, false);
            by.accumulate(&dpre, xc, d, &mut grads.w_enc_t, false);
            grads.b_enc = by.sums(&dpre);
            col_sums = by.sums(&feats.val);
        }
        Path::Dense => {
            scratch.df.resize(rows * f_n, 0.0);
            matmul_nt(&mut scratch.df, &g, &w.w_dec, rows, d, f_n, false);
            let fm = &scratch.f;
            let lw = l1_weight.as_deref();
            scratch
                .df
                .par_chunks_mut(f_n)
                .zip(fm.par_chunks(f_n))
                .for_each(|(dp, fr)| {
                    for j in 0..f_n {
                        dp[j] = if fr[j] > 0.0 {
                            dp[j] + lw.map_or(0.0, |l| l[j])
                        } else {
                            0.0
                        };
                    }
                });
            if let Some(lw) = lw {
                parts.l1 = sum_f64(rows, |t| {
                    let fr = &fm[t * f_n..(t + 1) * f_n];
                    fr.iter().zip(lw).map(|(a, b)| (a * b) as f64).sum()
                });
            }
            matmul_tn(&mut grads.w_dec, fm, &g, f_n, rows, d, false);
            matmul_tn(&mut grads.w_enc_t, &scratch.df, xc, f_n, rows, d, false);
            grads.b_enc = sum_rows(&scratch.df, f_n);
            col_sums = sum_rows(fm, f_n);
        }
    }

    // April: ∂(λ/B Σ_t f_tj ‖W_dec[j]‖)/∂W_dec[j] = (λ/B)(Σ_t f_tj) W_dec[j] / ‖W_dec[j]‖.
    if let (Some(l1), Some(norms)) = (obj.l1, &norms) {
        let c = l1.coefficient * inv_b;
        grads
            .w_dec
            .par_chunks_mut(d)
            .zip(w.w_dec.par_chunks(d))
            .enumerate()
            .for_each(|(j, (gj, wj))| {
                if col_sums[j] != 0.0 && norms[j] > 0.0 {
                    axpy(gj, c * col_sums[j] / norms[j], wj);
                }
            });
    }

    // AuxK: reconstruct the (fixed) residual r = −e from dead latents, without b_dec.
    if let Some(aux) = &obj.aux {
        let af = aux.features;
        let mut u = vec![0.0f32; rows * d];
        sparse::decode(af, None, &w.w_dec, d, None, &mut u);
        u.par_iter_mut().zip(&e).for_each(|(ui, ei)| *ui += ei); // ê − r = ê + e
        parts.aux = aux.coefficient as f64
            * inv_b as f64
            * sum_f64(rows, |t| {
                let r = &u[t * d..(t + 1) * d];
                dot(r, r) as f64
            });
        let h: Vec<f32> = u
            .par_iter()
            .map(|v| 2.0 * aux.coefficient * inv_b * v)
            .collect();
        let da = sparse::entry_dots(af, &h, &w.w_dec, d);
        let by = ByLatent::new(af);
        by.accumulate(&af.val, &h, d, &mut grads.w_dec, true);
        by.accumulate(&da, xc, d, &mut grads.w_enc_t, true);
        for (b, s) in grads.b_enc.iter_mut().zip(by.sums(&da)) {
            *b += s;
        }
    }

    // b_dec: through x̂ directly, and through the input centring x − b_dec.
    grads.b_dec = sum_rows(&g, d);
    if obj.apply_b_dec_to_input {
        let through_enc = weighted_row_sum(&grads.b_enc, &w.w_enc_t, d);
        axpy(&mut grads.b_dec, -1.0, &through_enc);
    }
    Ok((parts, recon))
}

/// The downstream loss at x̂ (training units) and its gradient in training units: with
/// x̂_hook = x̂ / s, ∂L/∂x̂ = (∂L/∂x̂_hook) / s.
fn downstream_gradient(down: &DownstreamTerm, recon: &[f32]) -> Result<(f64, Vec<f32>)> {
    let s = down.input_scale;
    let in_hook_units: Vec<f32> = recon.par_iter().map(|v| v / s).collect();
    let (loss, mut g) = (down.loss)(&in_hook_units).map_err(SaeError::Downstream)?;
    if g.len() != recon.len() || !loss.is_finite() {
        return Err(SaeError::Downstream(format!(
            "it gave a loss of {loss} and {} gradient values for {} reconstructed values",
            g.len(),
            recon.len()
        )));
    }
    g.par_iter_mut().for_each(|v| *v /= s);
    Ok((loss, g))
}

/// One coefficient per entry of `f` (its values, or gradients at its entries) as a dense
/// `[rows, d_sae]` matrix in `out`, zeros elsewhere.
pub(super) fn scatter_dense(f: &SparseFeatures, coeff: &[f32], out: &mut Vec<f32>) {
    out.resize(f.rows * f.d_sae, 0.0);
    out.par_chunks_mut(f.d_sae)
        .enumerate()
        .for_each(|(t, row)| {
            row.fill(0.0);
            let r = f.row_ptr[t]..f.row_ptr[t + 1];
            for (&j, &c) in f.idx[r.clone()].iter().zip(&coeff[r]) {
                row[j as usize] = c;
            }
        });
}

/// Removes from each decoder-row gradient its component along the row, so a step moves
/// the row along the unit sphere (before renormalisation puts it back exactly).
pub fn remove_parallel_component(w_dec: &[f32], grad: &mut [f32], d: usize) {
    grad.par_chunks_mut(d)
        .zip(w_dec.par_chunks(d))
        .for_each(|(g, w)| {
            let ww = dot(w, w);
            if ww > 0.0 {
                let c = dot(g, w) / ww;
                axpy(g, -c, w);
            }
        });
}

/// Scales each decoder row to unit norm (zero rows are left alone).
pub fn normalize_rows(w_dec: &mut [f32], d: usize) {
    w_dec.par_chunks_mut(d).for_each(|w| {
        let n = dot(w, w).sqrt();
        if n > 0.0 {
            w.iter_mut().for_each(|v| *v /= n);
        }
    });
}
