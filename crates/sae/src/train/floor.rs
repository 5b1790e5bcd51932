//! TopK's firing floor. With a large lr, latents that lose the race for the k slots early
//! stay silent: AuxK gives them gradient only once they count as dead, and resampling
//! moves their directions without making them win. The floor acts on the bias instead: a
//! latent that fired on fewer than m = round(min_density·B) (at least 1) of a batch's B
//! tokens has its `b_enc` raised by the least amount that would have made it fire on m of
//! them, i.e. the m-th smallest gap between a token's smallest active value and the
//! latent's pre-activation there. The gradient then tells it what to do with those tokens.
//!
//! It is an option, off by default, because it assumes every latent has something to learn.
//! On the README main job (16,384 latents, 94 steps) `min_density` 1/2048 leaves 0.9% of
//! the latents silent over the held-out tokens instead of 5.1% at the same fvu (0.131
//! against 0.130); over 4M tokens it costs 6% of fvu (0.080 against 0.076); and where the
//! data hold fewer features than the dictionary has latents (the ground-truth test: 2,048
//! true directions, 4,096 latents) it keeps the surplus latents firing and finds 51% of the
//! true directions instead of 90% (BENCHMARKS.md, "Quality per token").

use crate::features::SparseFeatures;

/// (latent, raise of its `b_enc`) for every latent under the floor on this batch; `pre` is
/// the batch's dense `[rows, d_sae]` pre-activations and `features` what fired (TopK).
pub(crate) fn floor_raises(
    pre: &[f32],
    features: &SparseFeatures,
    min_density: f64,
) -> Vec<(u32, f32)> {
    let (rows, f_n) = (features.rows, features.d_sae);
    if min_density <= 0.0 || rows == 0 {
        return Vec::new();
    }
    let m = ((min_density * rows as f64).round() as usize).clamp(1, rows);
    let mut fires = vec![0usize; f_n];
    features.idx.iter().for_each(|&j| fires[j as usize] += 1);
    let under: Vec<u32> = (0..f_n as u32).filter(|&j| fires[j as usize] < m).collect();
    if under.is_empty() {
        return Vec::new();
    }
    // What a latent must exceed to enter row t: the row's smallest active value, and 0
    // (TopK keeps positive values only).
    let entry: Vec<f32> = (0..rows)
        .map(|t| {
            let v = &features.val[features.row_ptr[t]..features.row_ptr[t + 1]];
            v.iter().copied().reduce(f32::min).unwrap_or(0.0).max(0.0)
        })
        .collect();
    // The m smallest gaps entry_t − pre[t, j] of each latent under the floor, ascending.
    let mut smallest = vec![f32::INFINITY; under.len() * m];
    for (t, &e) in entry.iter().enumerate() {
        let row = &pre[t * f_n..(t + 1) * f_n];
        for (&j, best) in under.iter().zip(smallest.chunks_exact_mut(m)) {
            let gap = e - row[j as usize];
            if gap < best[m - 1] {
                let at = best.partition_point(|&b| b <= gap);
                best.copy_within(at..m - 1, at + 1);
                best[at] = gap;
            }
        }
    }
    under
        .iter()
        .zip(smallest.chunks_exact(m))
        .filter_map(|(&j, best)| {
            let gap = best[m - 1];
            // Just past the gap, so that the latent wins the tie.
            (gap.is_finite() && gap > 0.0).then_some((j, gap * (1.0 + 1e-3) + f32::EPSILON))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::select::top_k_rows;

    /// Four tokens, four latents, k = 1: latent 3 never wins and needs the second
    /// smallest of its gaps to win twice.
    #[test]
    fn raises_a_silent_latent_just_enough_to_fire_on_its_share() {
        #[rustfmt::skip]
        let pre = [
            5.0, 1.0, 0.0, 4.0,
            0.0, 6.0, 1.0, 3.0,
            1.0, 0.0, 7.0, 2.0,
            4.5, 0.0, 0.0, 0.5,
        ];
        let features = top_k_rows(&pre, 4, 4, 1, None);
        // m = round(0.5·4) = 2: latents 1 and 2 fired once, latent 3 never.
        let raises = floor_raises(&pre, &features, 0.5);
        let got: Vec<u32> = raises.iter().map(|r| r.0).collect();
        assert_eq!(got, vec![1, 2, 3]);
        // Latent 3's gaps: 1, 3, 5, 4 → the second smallest is 3.
        let r3 = raises[2].1;
        assert!(r3 > 3.0 && r3 < 3.01, "{r3}");
        let mut raised = pre;
        (0..4).for_each(|t| raised[t * 4 + 3] += r3);
        let after = top_k_rows(&raised, 4, 4, 1, None);
        assert_eq!(after.idx.iter().filter(|&&j| j == 3).count(), 2);
        // Latent 0 fired twice: untouched. Off means no raise at all.
        assert!(floor_raises(&pre, &features, 0.0).is_empty());
    }
}
