//! The per-feature activation histogram: fixed log-spaced bins, so one pass needs no
//! knowledge of a feature's range.

/// log10 of the first edge.
pub const LOG10_MIN: f64 = -4.0;
/// Bin width in log10 units.
pub const LOG10_STEP: f64 = 0.1;
/// Bins from 1e-4 to 1e4.
pub const BINS: usize = 80;

/// The `BINS + 1` edges.
pub fn edges() -> Vec<f64> {
    (0..=BINS)
        .map(|i| 10f64.powf(LOG10_MIN + i as f64 * LOG10_STEP))
        .collect()
}

/// The bin of a nonzero activation's magnitude; values beyond the edges go to the end bins.
pub fn bin(value: f32) -> usize {
    let l = (value.abs() as f64).log10();
    if !l.is_finite() || l < LOG10_MIN {
        return 0;
    }
    (((l - LOG10_MIN) / LOG10_STEP) as usize).min(BINS - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_land_between_their_edges() {
        let e = edges();
        for v in [2e-4f32, 0.0137, 1.0, 3.7, 512.0, 9e3] {
            let b = bin(v);
            assert!(e[b] <= v as f64 * (1.0 + 1e-6) && (v as f64) < e[b + 1] * (1.0 + 1e-6));
        }
        assert_eq!(bin(1e-9), 0);
        assert_eq!(bin(1e9), BINS - 1);
    }
}
