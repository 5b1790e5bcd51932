//! JumpReLU's L0 penalty and the straight-through gradient of its thresholds
//! (Rajamanoharan et al. 2024, "Jumping Ahead").
//!
//! With f_tj = pre_tj · H(pre_tj − θ_j) and K(u) = 1[|u| < ½] the rectangle kernel of
//! bandwidth ε, the pseudo-derivatives are
//!   ∂f_tj/∂θ_j = −(θ_j/ε) K((pre_tj − θ_j)/ε)   and   ∂H/∂θ_j = −(1/ε) K((pre_tj − θ_j)/ε),
//! and neither H nor the jump passes gradient to `pre` (f does, as 1 where it fires, which
//! the reconstruction gradient already covers). So for
//!   L = L_rec + (λ/B) Σ_t Σ_j H(pre_tj − θ_j)
//! the threshold gradient sums, over the entries within ε/2 of their threshold,
//!   ∂L/∂θ_j = Σ_t K(·) · [ −(θ_j/ε) ⟨g_t, W_dec[j]⟩ − λ/(B ε) ],   g_t = ∂L_rec/∂x̂_t.

use crate::features::SparseFeatures;
use crate::kernels::sparse::{entry_dots, ByLatent};

/// The L0 penalty's value and its gradient on the thresholds, written into `grad`.
pub struct ThresholdTerm<'a> {
    pub threshold: &'a [f32],
    pub bandwidth: f32,
    /// λ, the L0 coefficient.
    pub coefficient: f32,
}

impl ThresholdTerm<'_> {
    /// `pre` is `[rows, d_sae]`, `g` the reconstruction gradient `[rows, d_in]`, `kept` the
    /// features that fired. Returns the penalty (λ times the mean L0).
    pub fn loss_and_grad(
        &self,
        pre: &[f32],
        kept: &SparseFeatures,
        g: &[f32],
        w_dec: &[f32],
        d: usize,
        grad: &mut [f32],
    ) -> f64 {
        let (rows, d_sae) = (kept.rows, kept.d_sae);
        let (eps, theta) = (self.bandwidth, self.threshold);
        let near = SparseFeatures::from_row_fn(rows, d_sae, |t, idx, val| {
            let row = &pre[t * d_sae..(t + 1) * d_sae];
            for (j, (&p, &th)) in row.iter().zip(theta).enumerate() {
                if ((p - th) / eps).abs() < 0.5 {
                    idx.push(j as u32);
                    val.push(1.0);
                }
            }
        });
        let dots = entry_dots(&near, g, w_dec, d);
        let step = self.coefficient / (rows as f32 * eps);
        let per_entry: Vec<f32> = dots
            .iter()
            .zip(&near.idx)
            .map(|(&dot, &j)| -(theta[j as usize] / eps) * dot - step)
            .collect();
        grad.copy_from_slice(&ByLatent::new(&near).sums(&per_entry));
        self.coefficient as f64 * kept.nnz() as f64 / rows as f64
    }
}
