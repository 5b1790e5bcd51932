//! Each feature's nearest features in another dictionary: the decoder directions with the
//! highest cosine (the MCS of METRICS.md is the first of them).

use rayon::prelude::*;
use saelab_sae::kernels::gemm::matmul_nt;

/// Rows of `a` compared with all of `b` at once (bounds memory at `BLOCK × d_sae(b)`).
const BLOCK: usize = 1024;

/// For each row of `a` (`[n_a, d]`), the `n` rows of `b` (`[n_b, d]`) with the highest
/// cosine, highest first (ties to the lower index). Zero rows have cosine 0 with anything.
pub fn nearest(a: &[f32], b: &[f32], d: usize, n: usize) -> Vec<Vec<(u32, f32)>> {
    let (a, b) = (unit_rows(a, d), unit_rows(b, d));
    let n_b = b.len() / d.max(1);
    let n = n.min(n_b);
    let mut out = Vec::with_capacity(a.len() / d.max(1));
    for block in a.chunks(BLOCK * d) {
        let rows = block.len() / d;
        let mut cos = vec![0f32; rows * n_b];
        matmul_nt(&mut cos, block, &b, rows, d, n_b, false);
        let best: Vec<Vec<(u32, f32)>> = cos.par_chunks(n_b).map(|row| top_n(row, n)).collect();
        out.extend(best);
    }
    out
}

fn unit_rows(w: &[f32], d: usize) -> Vec<f32> {
    let mut out = w.to_vec();
    for row in out.chunks_mut(d.max(1)) {
        let norm = row.iter().map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt();
        if norm > 0.0 {
            row.iter_mut().for_each(|v| *v = (*v as f64 / norm) as f32);
        }
    }
    out
}

fn top_n(row: &[f32], n: usize) -> Vec<(u32, f32)> {
    let mut best: Vec<(u32, f32)> = Vec::with_capacity(n + 1);
    for (j, &c) in row.iter().enumerate() {
        if best.len() < n || best.last().is_some_and(|&(_, w)| c > w) {
            let at = best.partition_point(|&(_, v)| v >= c);
            best.insert(at, (j as u32, c));
            best.truncate(n);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_most_aligned_directions_in_order() {
        // b: e0, e1, (e0 + e1)/√2 scaled by 3, −e0.
        let b = [1.0, 0.0, 0.0, 1.0, 3.0, 3.0, -1.0, 0.0];
        let a = [2.0, 0.0, 0.0, 0.0];
        let best = nearest(&a, &b, 2, 3);
        assert_eq!(best[0][0], (0, 1.0));
        assert_eq!(best[0][1].0, 2);
        assert!((best[0][1].1 - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
        assert_eq!(best[0][2], (1, 0.0));
        assert!(
            best[1].iter().all(|&(_, c)| c == 0.0),
            "a zero row matches nothing"
        );
    }
}
