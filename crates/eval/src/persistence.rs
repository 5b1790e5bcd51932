//! How a feature fires along the token axis: whether it stays on once on. For each latent,
//! over the positions of whole windows in order,
//! - `p_stay` = P(fires at t+1 | fires at t), over the t whose t+1 is in the same window;
//! - `mean_run` = mean length of its runs (maximal stretches of consecutive firing
//!   positions within a window; a run cut by the window's end counts as it is).
//!
//! A feature that marks a region of text ("inside a code block") has `p_stay` near 1 and long
//! runs; a token feature has `p_stay` near its density.

use saelab_sae::SparseFeatures;
use serde::{Deserialize, Serialize};

use crate::histogram::median;

/// Counts for one latent; `p_stay` and `mean_run` are `None` when it never fired.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Persistence {
    pub fires: u64,
    /// Firing positions whose next position is in the same window.
    pub pairs: u64,
    /// Of those, how many fire at the next position too.
    pub stays: u64,
    pub runs: u64,
}

impl Persistence {
    pub fn p_stay(&self) -> Option<f64> {
        (self.pairs > 0).then(|| self.stays as f64 / self.pairs as f64)
    }

    pub fn mean_run(&self) -> Option<f64> {
        (self.runs > 0).then(|| self.fires as f64 / self.runs as f64)
    }

    /// Adds counts from other windows (windows are independent, so the sums are exact).
    pub fn add(&mut self, other: &Persistence) {
        self.fires += other.fires;
        self.pairs += other.pairs;
        self.stays += other.stays;
        self.runs += other.runs;
    }
}

/// Latents that fire fewer times than this are left out of a [`PersistenceSummary`]: a
/// latent seen once or twice has a P(stay) of 0 or 1 by chance.
pub const SUMMARY_MIN_FIRES: u64 = 5;

/// Persistence over a dictionary's latents, for a results table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PersistenceSummary {
    /// Latents counted: those that fired at least `min_fires` times.
    pub latents: usize,
    pub min_fires: u64,
    /// Median over the counted latents of P(stay); `None` when none is counted.
    pub p_stay_median: Option<f64>,
    /// Median over the counted latents of the mean run length, in positions.
    pub mean_run_median: Option<f64>,
    /// Σ stays / Σ pairs over the counted latents: P(stay) of a firing picked at random.
    pub p_stay_pooled: Option<f64>,
}

/// The summary of per-latent counts, over latents that fired at least `min_fires` times.
pub fn summarize(latents: &[Persistence], min_fires: u64) -> PersistenceSummary {
    let counted: Vec<&Persistence> = latents
        .iter()
        .filter(|p| p.fires >= min_fires.max(1))
        .collect();
    let p_stay: Vec<f64> = counted.iter().filter_map(|p| p.p_stay()).collect();
    let runs: Vec<f64> = counted.iter().filter_map(|p| p.mean_run()).collect();
    let (stays, pairs) = counted
        .iter()
        .fold((0u64, 0u64), |(s, n), p| (s + p.stays, n + p.pairs));
    PersistenceSummary {
        latents: counted.len(),
        min_fires,
        p_stay_median: (!p_stay.is_empty()).then(|| median(&p_stay)),
        mean_run_median: (!runs.is_empty()).then(|| median(&runs)),
        p_stay_pooled: (pairs > 0).then(|| stays as f64 / pairs as f64),
    }
}

/// Per latent, from codes whose rows are consecutive windows of `window_len` positions.
pub fn persistence(features: &SparseFeatures, window_len: usize) -> Vec<Persistence> {
    assert!(
        window_len > 0 && features.rows.is_multiple_of(window_len),
        "rows must be whole windows"
    );
    let mut out = vec![Persistence::default(); features.d_sae];
    for t in 0..features.rows {
        let (idx, _) = features.row(t);
        let first = t % window_len == 0;
        let last = (t + 1) % window_len == 0;
        let prev = (!first).then(|| features.row(t - 1).0);
        let next = (!last).then(|| features.row(t + 1).0);
        for &j in idx {
            let p = &mut out[j as usize];
            p.fires += 1;
            if prev.is_none_or(|r| r.binary_search(&j).is_err()) {
                p.runs += 1;
            }
            if let Some(n) = next {
                p.pairs += 1;
                p.stays += u64::from(n.binary_search(&j).is_ok());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(rows: &[&[u32]], d_sae: usize) -> SparseFeatures {
        let mut f = SparseFeatures {
            rows: rows.len(),
            d_sae,
            row_ptr: vec![0],
            idx: Vec::new(),
            val: Vec::new(),
        };
        for r in rows {
            f.idx.extend_from_slice(r);
            f.val.extend(r.iter().map(|_| 1.0));
            f.row_ptr.push(f.idx.len());
        }
        f
    }

    #[test]
    fn runs_and_stays_are_counted_within_windows() {
        // Two windows of 4. Latent 0: on, on, off, on | on, on, on, on.
        // Latent 1: off, on, off, off | off, off, off, on.
        let f = codes(&[&[0], &[0, 1], &[], &[0], &[0], &[0], &[0], &[0, 1]], 3);
        let p = persistence(&f, 4);
        // Latent 0: 7 fires; pairs (t with t+1 in window): t=0,1 | 4,5,6 → 5, stays 1 + 3.
        assert_eq!(
            p[0],
            Persistence {
                fires: 7,
                pairs: 5,
                stays: 4,
                runs: 3
            }
        );
        assert_eq!(p[0].mean_run(), Some(7.0 / 3.0));
        assert_eq!(
            p[1],
            Persistence {
                fires: 2,
                pairs: 1,
                stays: 0,
                runs: 2
            }
        );
        assert_eq!(p[2].p_stay(), None);
        assert_eq!(p[2].mean_run(), None);
    }

    #[test]
    fn the_summary_counts_only_latents_that_fire_often_enough() {
        let f = codes(&[&[0], &[0, 1], &[], &[0], &[0], &[0], &[0], &[0, 1]], 3);
        let mut p = persistence(&f, 4);
        // Windows are independent: counting the same windows twice doubles every count.
        let twice: Vec<Persistence> = p
            .iter()
            .map(|a| {
                let mut b = *a;
                b.add(a);
                b
            })
            .collect();
        assert_eq!(twice[0].fires, 14);
        assert_eq!(twice[0].p_stay(), p[0].p_stay());
        let s = summarize(&p, 3);
        // Only latent 0 (7 fires) is counted.
        assert_eq!(s.latents, 1);
        assert_eq!(s.p_stay_median, Some(0.8));
        assert_eq!(s.mean_run_median, Some(7.0 / 3.0));
        assert_eq!(s.p_stay_pooled, Some(0.8));
        let all = summarize(&p, 1);
        assert_eq!(all.latents, 2);
        // P(stay) 0.8 and 0: median 0.4; pooled 4 / 6.
        assert_eq!(all.p_stay_median, Some(0.4));
        assert_eq!(all.p_stay_pooled, Some(4.0 / 6.0));
        p.iter_mut().for_each(|q| *q = Persistence::default());
        let none = summarize(&p, 1);
        assert_eq!((none.latents, none.p_stay_median), (0, None));
    }
}
