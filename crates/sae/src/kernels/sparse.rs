//! Products with sparse feature matrices: decoding (gather k decoder rows per token), the
//! gradient at the active entries only, and per-latent accumulations for the weight
//! gradients. Each output element is written by one task in a fixed order: deterministic.

use rayon::prelude::*;

use super::vector::{axpy, dot};
use crate::features::SparseFeatures;

/// `out[t] = bias + Σ_e coeff[e] · w[idx[e]]` over row t's entries (`w` is `[d_sae, d]`).
/// `coeff` defaults to the entries' values.
pub fn decode(
    f: &SparseFeatures,
    coeff: Option<&[f32]>,
    w: &[f32],
    d: usize,
    bias: Option<&[f32]>,
    out: &mut [f32],
) {
    let coeff = coeff.unwrap_or(&f.val);
    out.par_chunks_mut(d).enumerate().for_each(|(t, row)| {
        match bias {
            Some(b) => row.copy_from_slice(b),
            None => row.fill(0.0),
        }
        let r = f.row_ptr[t]..f.row_ptr[t + 1];
        for (&j, &c) in f.idx[r.clone()].iter().zip(&coeff[r]) {
            if c != 0.0 {
                let j = j as usize;
                axpy(row, c, &w[j * d..(j + 1) * d]);
            }
        }
    });
}

/// Per entry (t, j): `⟨g[t], w[j]⟩`, the gradient reaching an active feature.
pub fn entry_dots(f: &SparseFeatures, g: &[f32], w: &[f32], d: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; f.nnz()];
    let rows = f.split_rows_mut(&mut out);
    rows.into_par_iter().enumerate().for_each(|(t, dst)| {
        let gt = &g[t * d..(t + 1) * d];
        let idx = &f.idx[f.row_ptr[t]..f.row_ptr[t + 1]];
        for (o, &j) in dst.iter_mut().zip(idx) {
            let j = j as usize;
            *o = dot(gt, &w[j * d..(j + 1) * d]);
        }
    });
    out
}

/// The entries of a `SparseFeatures` grouped by latent (column), rows ascending.
pub struct ByLatent {
    pub col_ptr: Vec<usize>,
    pub row: Vec<u32>,
    /// Position of the entry in the row-compressed arrays.
    pub entry: Vec<u32>,
}

impl ByLatent {
    pub fn new(f: &SparseFeatures) -> Self {
        let mut col_ptr = vec![0usize; f.d_sae + 1];
        for &j in &f.idx {
            col_ptr[j as usize + 1] += 1;
        }
        for j in 0..f.d_sae {
            col_ptr[j + 1] += col_ptr[j];
        }
        let mut next = col_ptr.clone();
        let mut row = vec![0u32; f.nnz()];
        let mut entry = vec![0u32; f.nnz()];
        for t in 0..f.rows {
            for e in f.row_ptr[t]..f.row_ptr[t + 1] {
                let j = f.idx[e] as usize;
                row[next[j]] = t as u32;
                entry[next[j]] = e as u32;
                next[j] += 1;
            }
        }
        ByLatent {
            col_ptr,
            row,
            entry,
        }
    }

    /// `out[j] (=|+=) Σ_{entries e of latent j} coeff[e] · src[row(e)]`, `src` `[rows, d]`,
    /// `out` `[d_sae, d]`. With `add == false`, latents without entries get zeros.
    pub fn accumulate(&self, coeff: &[f32], src: &[f32], d: usize, out: &mut [f32], add: bool) {
        out.par_chunks_mut(d).enumerate().for_each(|(j, dst)| {
            if !add {
                dst.fill(0.0);
            }
            for p in self.col_ptr[j]..self.col_ptr[j + 1] {
                let c = coeff[self.entry[p] as usize];
                if c != 0.0 {
                    let t = self.row[p] as usize;
                    axpy(dst, c, &src[t * d..(t + 1) * d]);
                }
            }
        });
    }

    /// Σ of `coeff` over each latent's entries (a bias gradient), in row order.
    pub fn sums(&self, coeff: &[f32]) -> Vec<f32> {
        (0..self.col_ptr.len() - 1)
            .map(|j| {
                (self.col_ptr[j]..self.col_ptr[j + 1])
                    .map(|p| coeff[self.entry[p] as usize])
                    .sum()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> (SparseFeatures, Vec<f32>) {
        // 3 rows, 4 latents, d = 2
        let dense = vec![
            1.0, 0.0, 2.0, 0.0, //
            0.0, 0.0, 0.0, 0.0, //
            0.5, 3.0, 0.0, 1.0,
        ];
        (SparseFeatures::from_dense(&dense, 3, 4), dense)
    }

    #[test]
    fn decode_and_grads_match_dense_products() {
        let (f, dense) = example();
        let d = 2;
        let w: Vec<f32> = (0..8).map(|i| i as f32 - 2.0).collect();
        let bias = [0.5, -0.5];
        let mut out = vec![0.0; 6];
        decode(&f, None, &w, d, Some(&bias), &mut out);
        for t in 0..3 {
            for c in 0..d {
                let want: f32 =
                    bias[c] + (0..4).map(|j| dense[t * 4 + j] * w[j * d + c]).sum::<f32>();
                assert_eq!(out[t * d + c], want);
            }
        }

        let g: Vec<f32> = (0..6).map(|i| (i as f32) * 0.5 - 1.0).collect();
        let dots = entry_dots(&f, &g, &w, d);
        let mut e = 0;
        for t in 0..3 {
            let (idx, _) = f.row(t);
            for &j in idx {
                let j = j as usize;
                assert_eq!(dots[e], g[t * d] * w[j * d] + g[t * d + 1] * w[j * d + 1]);
                e += 1;
            }
        }

        let by = ByLatent::new(&f);
        let mut gw = vec![f32::NAN; 8];
        by.accumulate(&f.val, &g, d, &mut gw, false);
        for j in 0..4 {
            for c in 0..d {
                let want: f32 = (0..3).map(|t| dense[t * 4 + j] * g[t * d + c]).sum();
                assert_eq!(gw[j * d + c], want);
            }
        }
        assert_eq!(by.sums(&f.val), vec![1.5, 3.0, 2.0, 1.0]);
    }
}
