//! A transcoder's skip connection in training. With ŷ = f W_dec + b_dec + x W_skipᵀ and
//! L = (1/B) Σ_t ‖ŷ_t − y_t‖², the sparse part learns the target less the skip term,
//! y − x W_skipᵀ, with the objectives of `objective.rs` unchanged, and
//!   ∂L/∂W_skip = (2/B) Σ_t e_t x_tᵀ,   e = ŷ − y   (W_skip stored output × input).

use crate::kernels::gemm::{matmul_nt, matmul_tn};

/// `y − x W_skipᵀ` for `rows` rows of width `d`.
pub fn sparse_target(y: &[f32], x: &[f32], w_skip: &[f32], d: usize) -> Vec<f32> {
    let rows = x.len() / d;
    let mut t = y.to_vec();
    let neg: Vec<f32> = w_skip.iter().map(|v| -v).collect();
    matmul_nt(&mut t, x, &neg, rows, d, d, true);
    t
}

/// ∂L/∂W_skip = (2/B) eᵀ x into `grad` (`[d, d]`), with `e = ŷ − y`.
pub fn skip_grad(e: &[f32], x: &[f32], d: usize, grad: &mut [f32]) {
    let rows = x.len() / d;
    matmul_tn(grad, e, x, d, rows, d, false);
    let c = 2.0 / rows as f32;
    grad.iter_mut().for_each(|g| *g *= c);
}
