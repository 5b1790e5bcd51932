//! Dense products through faer (the fastest f32 GEMM measured on this stack), on row-major
//! slices. A transposed operand is only a different view of the same memory, so no copy is
//! ever made.

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};

fn accum(add: bool) -> Accum {
    if add {
        Accum::Add
    } else {
        Accum::Replace
    }
}

/// `out[n, m] (=|+=) a[n, k] · b[k, m]`.
pub fn matmul_nn(out: &mut [f32], a: &[f32], b: &[f32], n: usize, k: usize, m: usize, add: bool) {
    debug_assert_eq!(a.len(), n * k);
    debug_assert_eq!(b.len(), k * m);
    matmul(
        MatMut::from_row_major_slice_mut(out, n, m),
        accum(add),
        MatRef::from_row_major_slice(a, n, k),
        MatRef::from_row_major_slice(b, k, m),
        1.0f32,
        Par::rayon(0),
    );
}

/// `out[n, m] (=|+=) a[n, k] · bᵀ` with `b` stored `[m, k]`.
pub fn matmul_nt(out: &mut [f32], a: &[f32], b: &[f32], n: usize, k: usize, m: usize, add: bool) {
    debug_assert_eq!(a.len(), n * k);
    debug_assert_eq!(b.len(), m * k);
    matmul(
        MatMut::from_row_major_slice_mut(out, n, m),
        accum(add),
        MatRef::from_row_major_slice(a, n, k),
        MatRef::from_column_major_slice(b, k, m),
        1.0f32,
        Par::rayon(0),
    );
}

/// `out[n, m] (=|+=) aᵀ · b` with `a` stored `[k, n]` and `b` stored `[k, m]`.
pub fn matmul_tn(out: &mut [f32], a: &[f32], b: &[f32], n: usize, k: usize, m: usize, add: bool) {
    debug_assert_eq!(a.len(), k * n);
    debug_assert_eq!(b.len(), k * m);
    matmul(
        MatMut::from_row_major_slice_mut(out, n, m),
        accum(add),
        MatRef::from_column_major_slice(a, n, k),
        MatRef::from_row_major_slice(b, k, m),
        1.0f32,
        Par::rayon(0),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(
        a: impl Fn(usize, usize) -> f32,
        b: impl Fn(usize, usize) -> f32,
        n: usize,
        k: usize,
        m: usize,
    ) -> Vec<f32> {
        let mut out = vec![0.0; n * m];
        for i in 0..n {
            for j in 0..m {
                out[i * m + j] = (0..k).map(|p| a(i, p) * b(p, j)).sum();
            }
        }
        out
    }

    #[test]
    fn the_three_layouts_agree_with_a_naive_product() {
        let (n, k, m) = (13, 7, 11);
        let a: Vec<f32> = (0..n * k).map(|i| ((i * 37) % 11) as f32 - 5.0).collect();
        let b: Vec<f32> = (0..k * m).map(|i| ((i * 13) % 7) as f32 * 0.5).collect();
        let want = naive(|i, p| a[i * k + p], |p, j| b[p * m + j], n, k, m);

        let mut out = vec![f32::NAN; n * m];
        matmul_nn(&mut out, &a, &b, n, k, m, false);
        assert_eq!(out, want);

        // bᵀ stored [m, k]
        let bt: Vec<f32> = (0..m * k).map(|x| b[(x % k) * m + x / k]).collect();
        let mut out = vec![f32::NAN; n * m];
        matmul_nt(&mut out, &a, &bt, n, k, m, false);
        assert_eq!(out, want);

        // aᵀ stored [k, n]
        let at: Vec<f32> = (0..k * n).map(|x| a[(x % n) * k + x / n]).collect();
        let mut out = vec![1.0; n * m];
        matmul_tn(&mut out, &at, &b, n, k, m, true);
        let want_plus: Vec<f32> = want.iter().map(|v| v + 1.0).collect();
        assert_eq!(out, want_plus);
    }
}
