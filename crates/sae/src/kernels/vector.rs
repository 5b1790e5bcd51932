//! Small vector loops written so the compiler vectorises them (eight independent lanes for
//! dot products, since it may not reorder a plain float sum), and fixed-order reductions:
//! a sum over a batch is split into fixed blocks whose partial results are added in block
//! order, so the result never depends on how rayon scheduled the blocks.

use rayon::prelude::*;

/// Rows per block in batch reductions: fixed, so results are the same on any thread count.
pub const REDUCE_BLOCK_ROWS: usize = 64;

#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let mut acc = [0.0f32; 8];
    let ca = a.chunks_exact(8);
    let cb = b.chunks_exact(8);
    let (ta, tb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (x, y) in ta.iter().zip(tb) {
        s += x * y;
    }
    s
}

/// `y += alpha · x`.
#[inline]
pub fn axpy(y: &mut [f32], alpha: f32, x: &[f32]) {
    debug_assert_eq!(y.len(), x.len());
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += alpha * xi;
    }
}

pub fn norm(a: &[f32]) -> f32 {
    dot(a, a).sqrt()
}

/// Column sums of a row-major `[rows, cols]` matrix, in a fixed order.
pub fn sum_rows(data: &[f32], cols: usize) -> Vec<f32> {
    if cols == 0 {
        return Vec::new();
    }
    let partials: Vec<Vec<f32>> = data
        .par_chunks(REDUCE_BLOCK_ROWS * cols)
        .map(|block| {
            let mut acc = vec![0.0f32; cols];
            for row in block.chunks_exact(cols) {
                axpy(&mut acc, 1.0, row);
            }
            acc
        })
        .collect();
    let mut total = vec![0.0f32; cols];
    for p in &partials {
        axpy(&mut total, 1.0, p);
    }
    total
}

/// Σ f(i) over 0..n in f64, with fixed blocks combined in order.
pub fn sum_f64(n: usize, f: impl Fn(usize) -> f64 + Sync) -> f64 {
    let blocks = n.div_ceil(REDUCE_BLOCK_ROWS);
    let partials: Vec<f64> = (0..blocks)
        .into_par_iter()
        .map(|b| {
            let end = ((b + 1) * REDUCE_BLOCK_ROWS).min(n);
            (b * REDUCE_BLOCK_ROWS..end).map(&f).sum()
        })
        .collect();
    partials.iter().sum()
}

/// `Σ_j coeff[j] · m[j]` over the rows of `m [coeff.len(), d]` (rows with a zero
/// coefficient skipped), in fixed blocks combined in order.
pub fn weighted_row_sum(coeff: &[f32], m: &[f32], d: usize) -> Vec<f32> {
    const BLOCK: usize = 256;
    let partials: Vec<Vec<f32>> = coeff
        .par_chunks(BLOCK)
        .zip(m.par_chunks(BLOCK * d))
        .map(|(c, rows)| {
            let mut acc = vec![0.0f32; d];
            for (&cj, row) in c.iter().zip(rows.chunks_exact(d)) {
                if cj != 0.0 {
                    axpy(&mut acc, cj, row);
                }
            }
            acc
        })
        .collect();
    let mut total = vec![0.0f32; d];
    for p in &partials {
        axpy(&mut total, 1.0, p);
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_and_sums_match_plain_loops() {
        let a: Vec<f32> = (0..37).map(|i| i as f32 * 0.25 - 3.0).collect();
        let b: Vec<f32> = (0..37).map(|i| (i % 5) as f32).collect();
        let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - plain).abs() < 1e-4);

        let cols = 3;
        let data: Vec<f32> = (0..300 * cols).map(|i| (i % 17) as f32).collect();
        let sums = sum_rows(&data, cols);
        for (c, got) in sums.iter().enumerate() {
            let want: f32 = data.iter().skip(c).step_by(cols).sum();
            assert_eq!(*got, want);
        }
        assert_eq!(sum_f64(1000, |i| i as f64), 499_500.0);

        let coeff: Vec<f32> = (0..600).map(|j| (j % 3) as f32).collect();
        let m: Vec<f32> = (0..600 * 2).map(|i| (i % 7) as f32).collect();
        let got = weighted_row_sum(&coeff, &m, 2);
        for (c, g) in got.iter().enumerate() {
            let want: f32 = (0..600).map(|j| coeff[j] * m[j * 2 + c]).sum();
            assert_eq!(*g, want);
        }
    }
}
