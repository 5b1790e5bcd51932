//! Choosing which pre-activations survive: the k largest positive values per row (TopK,
//! AuxK), the k·B largest over a whole batch (BatchTopK) and everything above a threshold
//! (ReLU, JumpReLU). Only positive values are ever kept: a kept zero or negative value
//! would be zeroed by the ReLU anyway and carries no gradient.

use std::cell::RefCell;

use rayon::prelude::*;

use crate::features::SparseFeatures;

thread_local! {
    static SCRATCH: RefCell<Vec<(f32, u32)>> = const { RefCell::new(Vec::new()) };
}

/// Largest value first; equal values by index, so the kept set is unique.
fn larger_first(a: &(f32, u32), b: &(f32, u32)) -> std::cmp::Ordering {
    b.0.total_cmp(&a.0).then(a.1.cmp(&b.1))
}

/// The k largest positive entries of `row` (all positives when there are no more than k),
/// appended in index order; ties at the cut go to the lower index. `candidates` restricts
/// the search to those latents (AuxK's dead ones).
///
/// One pass with a rising bar: values above the bar go to a small buffer; when it holds
/// 4k entries, `select_nth_unstable_by` keeps the k largest and the bar rises to the kth.
/// Most values then cost one comparison, instead of a selection over the whole row.
pub fn top_k_of_row(
    row: &[f32],
    k: usize,
    candidates: Option<&[u32]>,
    idx: &mut Vec<u32>,
    val: &mut Vec<f32>,
) {
    if k == 0 {
        return;
    }
    SCRATCH.with(|s| {
        let mut buf = s.borrow_mut();
        buf.clear();
        let cap = (4 * k).max(64);
        let mut bar = 0.0f32;
        let mut offer = |j: u32, v: f32| {
            // `v > bar` is false for NaN: a NaN is never kept.
            if v > bar {
                buf.push((v, j));
                if buf.len() == cap {
                    buf.select_nth_unstable_by(k - 1, larger_first);
                    buf.truncate(k);
                    // Keep strictly larger values from now on: an equal later value would
                    // lose the tie to the kept one with a lower index anyway.
                    bar = buf[k - 1].0;
                }
            }
        };
        match candidates {
            None => row
                .iter()
                .enumerate()
                .for_each(|(j, &v)| offer(j as u32, v)),
            Some(c) => c.iter().for_each(|&j| offer(j, row[j as usize])),
        }
        if buf.len() > k {
            buf.select_nth_unstable_by(k - 1, larger_first);
            buf.truncate(k);
        }
        buf.sort_unstable_by_key(|e| e.1);
        for &(v, j) in buf.iter() {
            idx.push(j);
            val.push(v);
        }
    });
}

/// Per-row TopK over a dense `[rows, d_sae]` matrix of pre-activations.
pub fn top_k_rows(
    pre: &[f32],
    rows: usize,
    d_sae: usize,
    k: usize,
    candidates: Option<&[u32]>,
) -> SparseFeatures {
    SparseFeatures::from_row_fn(rows, d_sae, |t, idx, val| {
        top_k_of_row(&pre[t * d_sae..(t + 1) * d_sae], k, candidates, idx, val)
    })
}

/// Every entry with `pre > threshold[j]` (and > 0): ReLU with a zero threshold, JumpReLU
/// with a learned one.
pub fn above_threshold(
    pre: &[f32],
    rows: usize,
    d_sae: usize,
    threshold: Option<&[f32]>,
) -> SparseFeatures {
    SparseFeatures::from_row_fn(rows, d_sae, |t, idx, val| {
        let row = &pre[t * d_sae..(t + 1) * d_sae];
        for (j, &v) in row.iter().enumerate() {
            let th = threshold.map_or(0.0, |th| th[j].max(0.0));
            if v > th {
                idx.push(j as u32);
                val.push(v);
            }
        }
    })
}

/// Gated features: where the gate `pre > 0` is open, the magnitude
/// `relu(mag_scale_j·(pre − b_gate_j) + b_mag_j)`, kept when positive.
pub fn gated(
    pre: &[f32],
    rows: usize,
    b_gate: &[f32],
    mag_scale: &[f32],
    b_mag: &[f32],
) -> SparseFeatures {
    let d_sae = b_gate.len();
    SparseFeatures::from_row_fn(rows, d_sae, |t, idx, val| {
        for (j, &v) in pre[t * d_sae..(t + 1) * d_sae].iter().enumerate() {
            if v > 0.0 {
                let m = mag_scale[j] * (v - b_gate[j]) + b_mag[j];
                if m > 0.0 {
                    idx.push(j as u32);
                    val.push(m);
                }
            }
        }
    })
}

/// Every positive entry with `pre ≥ cut` (BatchTopK once its cut is known).
pub fn at_least(pre: &[f32], rows: usize, d_sae: usize, cut: f32) -> SparseFeatures {
    SparseFeatures::from_row_fn(rows, d_sae, |t, idx, val| {
        for (j, &v) in pre[t * d_sae..(t + 1) * d_sae].iter().enumerate() {
            if v >= cut && v > 0.0 {
                idx.push(j as u32);
                val.push(v);
            }
        }
    })
}

/// BatchTopK: the `k_total` largest positive entries of the whole batch (ties at the cut
/// all kept), and the smallest kept value.
///
/// A strided sample (every 64th value) gives a bar that about 2·k_total values clear; one
/// pass keeps those as candidates, and the exact cut is selected among them alone. The
/// result is exact whenever at least k_total values clear the bar (the top k_total are then
/// all candidates); otherwise the histogram search below runs instead.
pub fn batch_top_k(
    pre: &[f32],
    rows: usize,
    d_sae: usize,
    k_total: usize,
) -> (SparseFeatures, Option<f32>) {
    const STRIDE: usize = 64;
    let sample: Vec<f32> = pre
        .iter()
        .step_by(STRIDE)
        .copied()
        .filter(|v| *v > 0.0)
        .collect();
    let want = (2 * k_total).div_ceil(STRIDE) + 16;
    let f = if k_total > 0 && sample.len() > want {
        let mut sample = sample;
        let (_, bar, _) = sample.select_nth_unstable_by(want - 1, |a, b| b.total_cmp(a));
        let candidates = at_least(pre, rows, d_sae, *bar);
        if candidates.nnz() > k_total {
            let mut vals = candidates.val.clone();
            let (_, cut, _) = vals.select_nth_unstable_by(k_total - 1, |a, b| b.total_cmp(a));
            let cut = *cut;
            SparseFeatures::from_row_fn(rows, d_sae, |t, idx, val| {
                let (ci, cv) = candidates.row(t);
                for (&j, &v) in ci.iter().zip(cv) {
                    if v >= cut {
                        idx.push(j);
                        val.push(v);
                    }
                }
            })
        } else {
            exact_batch_top_k(pre, rows, d_sae, k_total)
        }
    } else {
        exact_batch_top_k(pre, rows, d_sae, k_total)
    };
    let min = f.val.iter().copied().reduce(f32::min);
    (f, min)
}

fn exact_batch_top_k(pre: &[f32], rows: usize, d_sae: usize, k_total: usize) -> SparseFeatures {
    match kth_largest_positive(pre, k_total) {
        Some(cut) => at_least(pre, rows, d_sae, cut),
        None => above_threshold(pre, rows, d_sae, None),
    }
}

/// The value of the `k`-th largest positive entry of the whole matrix, or `None` when at
/// most `k` entries are positive (then all of them are kept). Positive f32s order like
/// their bit patterns, so a histogram of the top 16 bits finds the bucket holding the cut
/// in one parallel pass (integer counts: order-free, deterministic); only that bucket is
/// then searched exactly.
pub fn kth_largest_positive(pre: &[f32], k: usize) -> Option<f32> {
    const BUCKETS: usize = 1 << 15; // sign bit is 0 for positives
    const BLOCK: usize = 1 << 20;
    let bucket = |v: f32| (v.to_bits() >> 16) as usize;
    let hists: Vec<Vec<u32>> = pre
        .par_chunks(BLOCK)
        .map(|c| {
            let mut h = vec![0u32; BUCKETS];
            for &v in c {
                if v > 0.0 && v.is_finite() {
                    h[bucket(v)] += 1;
                }
            }
            h
        })
        .collect();
    let mut hist = vec![0u64; BUCKETS];
    for h in &hists {
        for (a, &b) in hist.iter_mut().zip(h) {
            *a += b as u64;
        }
    }
    let positives: u64 = hist.iter().sum();
    if positives <= k as u64 || k == 0 {
        return None;
    }
    // Walk down from the largest bucket until k values are covered.
    let mut above = 0u64;
    let mut cut_bucket = 0;
    for b in (0..BUCKETS).rev() {
        if above + hist[b] >= k as u64 {
            cut_bucket = b;
            break;
        }
        above += hist[b];
    }
    let mut inside: Vec<f32> = pre
        .par_chunks(BLOCK)
        .flat_map_iter(|c| {
            c.iter()
                .copied()
                .filter(move |&v| v > 0.0 && v.is_finite() && bucket(v) == cut_bucket)
        })
        .collect();
    let rank = (k as u64 - above - 1) as usize;
    let (_, kth, _) = inside.select_nth_unstable_by(rank, |a, b| b.total_cmp(a));
    Some(*kth)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;

    #[test]
    fn top_k_of_row_keeps_the_largest_positives_in_index_order() {
        let row = [0.5, -1.0, 3.0, 2.0, 0.0, 2.0, 1.0];
        let (mut idx, mut val) = (vec![], vec![]);
        top_k_of_row(&row, 3, None, &mut idx, &mut val);
        assert_eq!(idx, vec![2, 3, 5]);
        assert_eq!(val, vec![3.0, 2.0, 2.0]);

        // A tie at the cut: only as many as k allows, the earlier index first.
        let (mut idx, mut val) = (vec![], vec![]);
        top_k_of_row(&row, 2, None, &mut idx, &mut val);
        assert_eq!(idx, vec![2, 3]);

        // Fewer positives than k: all positives, nothing else.
        let (mut idx, mut val) = (vec![], vec![]);
        top_k_of_row(&[-1.0, 0.0, 0.25], 2, None, &mut idx, &mut val);
        assert_eq!((idx, val), (vec![2], vec![0.25]));

        // Candidates restrict the search.
        let (mut idx, mut val) = (vec![], vec![]);
        top_k_of_row(&row, 2, Some(&[0, 1, 6]), &mut idx, &mut val);
        assert_eq!(idx, vec![0, 6]);
    }

    #[test]
    fn kth_largest_matches_a_full_sort() {
        let mut r = SplitMix64::new(3);
        let data: Vec<f32> = (0..50_000).map(|_| r.normal() * 3.0).collect();
        let mut pos: Vec<f32> = data.iter().copied().filter(|v| *v > 0.0).collect();
        pos.sort_by(|a, b| b.total_cmp(a));
        for k in [1, 7, 1000, pos.len() - 1] {
            assert_eq!(kth_largest_positive(&data, k), Some(pos[k - 1]), "k = {k}");
        }
        assert_eq!(kth_largest_positive(&data, pos.len()), None);

        // Both the sampled search and the exact fallback (too few positives to sample).
        for k in [1000, 20_000] {
            let (f, min) = batch_top_k(&data, 500, 100, k);
            assert_eq!(f.nnz(), k);
            assert_eq!(min, Some(pos[k - 1]));
            assert!(f.val.iter().all(|v| *v >= pos[k - 1]));
        }
        let (f, _) = batch_top_k(&data, 500, 100, 10);
        assert_eq!(f.nnz(), 10);
    }
}
