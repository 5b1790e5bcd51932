//! Feature activations of a batch, stored row-compressed: a TopK row holds k entries of
//! 16k latents, so a dense matrix would be 99.8% zeros.

use rayon::prelude::*;

use crate::kernels::vector::REDUCE_BLOCK_ROWS;

#[derive(Clone, Debug, PartialEq)]
pub struct SparseFeatures {
    pub rows: usize,
    pub d_sae: usize,
    /// Row t's entries are `row_ptr[t]..row_ptr[t + 1]`.
    pub row_ptr: Vec<usize>,
    /// Latent index of each entry, ascending within a row.
    pub idx: Vec<u32>,
    pub val: Vec<f32>,
}

impl SparseFeatures {
    /// Builds the rows in parallel; `fill(t, idx, val)` appends row t's entries. Blocks are
    /// joined in row order, so the result never depends on the thread schedule.
    pub fn from_row_fn(
        rows: usize,
        d_sae: usize,
        fill: impl Fn(usize, &mut Vec<u32>, &mut Vec<f32>) + Sync,
    ) -> Self {
        let blocks = rows.div_ceil(REDUCE_BLOCK_ROWS);
        let parts: Vec<(Vec<usize>, Vec<u32>, Vec<f32>)> = (0..blocks)
            .into_par_iter()
            .map(|b| {
                let (mut lens, mut idx, mut val) = (Vec::new(), Vec::new(), Vec::new());
                for t in b * REDUCE_BLOCK_ROWS..((b + 1) * REDUCE_BLOCK_ROWS).min(rows) {
                    let before = idx.len();
                    fill(t, &mut idx, &mut val);
                    lens.push(idx.len() - before);
                }
                (lens, idx, val)
            })
            .collect();
        let nnz = parts.iter().map(|p| p.1.len()).sum();
        let mut out = SparseFeatures {
            rows,
            d_sae,
            row_ptr: Vec::with_capacity(rows + 1),
            idx: Vec::with_capacity(nnz),
            val: Vec::with_capacity(nnz),
        };
        out.row_ptr.push(0);
        for (lens, idx, val) in parts {
            for l in lens {
                let last = *out.row_ptr.last().unwrap_or(&0);
                out.row_ptr.push(last + l);
            }
            out.idx.extend_from_slice(&idx);
            out.val.extend_from_slice(&val);
        }
        out
    }

    /// The nonzero entries of a dense row-major `[rows, d_sae]` matrix.
    pub fn from_dense(data: &[f32], rows: usize, d_sae: usize) -> Self {
        Self::from_row_fn(rows, d_sae, |t, idx, val| {
            for (j, &v) in data[t * d_sae..(t + 1) * d_sae].iter().enumerate() {
                if v != 0.0 {
                    idx.push(j as u32);
                    val.push(v);
                }
            }
        })
    }

    pub fn nnz(&self) -> usize {
        self.idx.len()
    }

    pub fn row(&self, t: usize) -> (&[u32], &[f32]) {
        let r = self.row_ptr[t]..self.row_ptr[t + 1];
        (&self.idx[r.clone()], &self.val[r])
    }

    /// Mean number of nonzero features per row.
    pub fn l0(&self) -> f64 {
        let nz = self.val.iter().filter(|v| **v != 0.0).count();
        nz as f64 / self.rows.max(1) as f64
    }

    /// The same features with every entry of a latent marked in `removed` (length `d_sae`)
    /// dropped, as if those latents' activations were 0.
    pub fn without(&self, removed: &[bool]) -> SparseFeatures {
        assert_eq!(removed.len(), self.d_sae, "one mark per latent");
        let mut out = SparseFeatures {
            rows: self.rows,
            d_sae: self.d_sae,
            row_ptr: Vec::with_capacity(self.rows + 1),
            idx: Vec::with_capacity(self.idx.len()),
            val: Vec::with_capacity(self.val.len()),
        };
        out.row_ptr.push(0);
        for t in 0..self.rows {
            let (idx, val) = self.row(t);
            for (&j, &v) in idx.iter().zip(val) {
                if !removed[j as usize] {
                    out.idx.push(j);
                    out.val.push(v);
                }
            }
            out.row_ptr.push(out.idx.len());
        }
        out
    }

    pub fn to_dense(&self) -> Vec<f32> {
        let mut out = vec![0.0f32; self.rows * self.d_sae];
        for t in 0..self.rows {
            let (idx, val) = self.row(t);
            for (&j, &v) in idx.iter().zip(val) {
                out[t * self.d_sae + j as usize] = v;
            }
        }
        out
    }

    /// Splits a per-entry buffer (same length as `idx`) into one mutable slice per row.
    pub(crate) fn split_rows_mut<'a, T>(&self, buf: &'a mut [T]) -> Vec<&'a mut [T]> {
        let mut out = Vec::with_capacity(self.rows);
        let mut rest = buf;
        for t in 0..self.rows {
            let (head, tail) = rest.split_at_mut(self.row_ptr[t + 1] - self.row_ptr[t]);
            out.push(head);
            rest = tail;
        }
        out
    }
}
