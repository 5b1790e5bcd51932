//! Ghost grads for ReLU-L1 dictionaries (Anthropic's January 2024 update, as SAELens v5
//! trained them): dead latents get a gradient that pulls them towards the residual the live
//! ones leave, through `exp(pre)` instead of the ReLU that keeps them silent.
//!
//! With D the dead latents, e_t = x̂_t − x_t the main error and r_t = −e_t its residual:
//!   G_t = Σ_{j∈D} exp(pre_tj) W_dec[j],   s_t = ‖r_t‖ / (2‖G_t‖ + 1e-6)  (held fixed),
//!   q_t = s_t G_t − r_t,   c_ti = e_ti² / (q_ti² + 1e-6)  (held fixed),
//!   L_ghost = (1/B) Σ_t Σ_i c_ti q_ti²,
//! so the ghost loss has the value of the reconstruction loss and only its gradient is new:
//! γ_t = (2/B) c_t ⊙ q_t, ∂W_dec[j] = Σ_t s_t exp(pre_tj) γ_t,
//! ∂pre_tj = s_t exp(pre_tj) ⟨γ_t, W_dec[j]⟩ (then into W_enc, b_enc and b_dec as usual).
//! The dead latents are gathered into dense blocks: a few GEMMs of width |D|.

use rayon::prelude::*;

use crate::kernels::gemm::{matmul_nn, matmul_nt, matmul_tn};
use crate::kernels::vector::{axpy, sum_rows};
use crate::weights::SaeWeights;

/// Adds the ghost loss's gradients into `grads` (which hold the main loss's) and returns its
/// value, both weighted by `scale` (its warm-up). `pre` is `[rows, d_sae]`, `e` the main
/// error x̂ − x, `xc` the centred input.
pub fn add_ghost_grads(
    w: &SaeWeights,
    pre: &[f32],
    e: &[f32],
    xc: &[f32],
    dead: &[u32],
    scale: f32,
    grads: &mut SaeWeights,
) -> f64 {
    let (d, f_n, n) = (w.d_in, w.d_sae, dead.len());
    let rows = e.len() / d;
    if n == 0 {
        return 0.0;
    }
    let inv_b = scale / rows as f32;
    let gather = |src: &[f32]| -> Vec<f32> {
        let mut out = Vec::with_capacity(n * d);
        for &j in dead {
            out.extend_from_slice(&src[j as usize * d..(j as usize + 1) * d]);
        }
        out
    };
    let w_dead = gather(&w.w_dec);
    let a: Vec<f32> = pre
        .par_chunks(f_n)
        .flat_map_iter(|row| dead.iter().map(move |&j| row[j as usize].exp()))
        .collect();
    let mut ghost = vec![0.0f32; rows * d];
    matmul_nn(&mut ghost, &a, &w_dead, rows, n, d, false);

    // Per row: the scale s_t, the fixed weights c and γ; s_t·γ_t is what flows into G_t.
    let mut s_gamma = vec![0.0f32; rows * d];
    let per_row: Vec<f64> = s_gamma
        .par_chunks_mut(d)
        .enumerate()
        .map(|(t, out)| {
            let (gt, et) = (&ghost[t * d..(t + 1) * d], &e[t * d..(t + 1) * d]);
            // In f64: c divides by q², which cancels where the ghost matches the residual.
            let norm = |v: &[f32]| v.iter().map(|a| (*a as f64).powi(2)).sum::<f64>().sqrt();
            let s = norm(et) / (2.0 * norm(gt) + 1e-6);
            let mut row_loss = 0.0f64;
            for i in 0..d {
                let (g, e) = (gt[i] as f64, et[i] as f64);
                let q = s * g + e;
                let c = e * e / (q * q + 1e-6);
                row_loss += c * q * q;
                out[i] = (s * 2.0 * c * q) as f32 * inv_b;
            }
            row_loss
        })
        .collect();
    let loss = scale as f64 * per_row.iter().sum::<f64>() / rows as f64;

    // W_dec rows of the dead latents.
    let mut dw = vec![0.0f32; n * d];
    matmul_tn(&mut dw, &a, &s_gamma, n, rows, d, false);
    // ∂pre at the dead latents: (sγ W_Dᵀ) ⊙ exp(pre).
    let mut dpre = vec![0.0f32; rows * n];
    matmul_nt(&mut dpre, &s_gamma, &w_dead, rows, d, n, false);
    dpre.par_iter_mut().zip(&a).for_each(|(p, a)| *p *= a);
    let mut denc = vec![0.0f32; n * d];
    matmul_tn(&mut denc, &dpre, xc, n, rows, d, false);
    let db = sum_rows(&dpre, n);

    for (i, &j) in dead.iter().enumerate() {
        let j = j as usize;
        let r = j * d..(j + 1) * d;
        axpy(&mut grads.w_dec[r.clone()], 1.0, &dw[i * d..(i + 1) * d]);
        axpy(
            &mut grads.w_enc_t[r.clone()],
            1.0,
            &denc[i * d..(i + 1) * d],
        );
        grads.b_enc[j] += db[i];
        // b_dec enters through xc = x − b_dec: −W_enc[:, j] Σ_t ∂pre_tj.
        axpy(&mut grads.b_dec, -db[i], &w.w_enc_t[r]);
    }
    loss
}
