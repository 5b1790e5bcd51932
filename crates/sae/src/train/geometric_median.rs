//! The geometric median of a batch (the point minimising the sum of distances), by
//! Weiszfeld's iterations from the mean. A robust centre for `b_dec`: a few outlier tokens
//! with huge norms move the mean but not the median.

use crate::kernels::vector::sum_f64;

/// Geometric median of the rows of `x [rows, d]`, computed in f64 with fixed-order sums.
pub fn geometric_median(x: &[f32], d: usize, max_iters: usize, tol: f64) -> Vec<f32> {
    let rows = x.len() / d.max(1);
    if rows == 0 {
        return vec![0.0; d];
    }
    let row = |t: usize| &x[t * d..(t + 1) * d];
    let mut y: Vec<f64> = (0..d)
        .map(|c| sum_f64(rows, |t| row(t)[c] as f64) / rows as f64)
        .collect();
    for _ in 0..max_iters {
        // w_t = 1 / ‖x_t − y‖ (guarded), y ← Σ w_t x_t / Σ w_t
        let weights: Vec<f64> = (0..rows)
            .map(|t| {
                let dist2: f64 = row(t)
                    .iter()
                    .zip(&y)
                    .map(|(a, b)| (*a as f64 - b).powi(2))
                    .sum();
                1.0 / dist2.sqrt().max(1e-8)
            })
            .collect();
        let total: f64 = weights.iter().sum();
        let mut next = vec![0.0f64; d];
        for (t, w) in weights.iter().enumerate() {
            for (n, v) in next.iter_mut().zip(row(t)) {
                *n += w * *v as f64;
            }
        }
        next.iter_mut().for_each(|v| *v /= total);
        let moved: f64 = next
            .iter()
            .zip(&y)
            .map(|(a, b)| (a - b).powi(2))
            .sum::<f64>()
            .sqrt();
        let scale: f64 = y.iter().map(|v| v * v).sum::<f64>().sqrt().max(1.0);
        y = next;
        if moved <= tol * scale {
            break;
        }
    }
    y.into_iter().map(|v| v as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resists_outliers_where_the_mean_does_not() {
        // Nine points around (1, 1), one far outlier.
        let mut x = vec![];
        for i in 0..9 {
            let e = (i as f32 - 4.0) * 0.01;
            x.extend_from_slice(&[1.0 + e, 1.0 - e]);
        }
        x.extend_from_slice(&[1000.0, -1000.0]);
        let m = geometric_median(&x, 2, 100, 1e-7);
        assert!(
            (m[0] - 1.0).abs() < 0.2 && (m[1] - 1.0).abs() < 0.2,
            "{m:?}"
        );
    }

    #[test]
    fn median_of_a_triangle_is_its_fermat_point() {
        // Equilateral triangle: the Fermat point is the centroid.
        let h = 3f32.sqrt() / 2.0;
        let x = [0.0, 0.0, 1.0, 0.0, 0.5, h];
        let m = geometric_median(&x, 2, 200, 1e-9);
        assert!(
            (m[0] - 0.5).abs() < 1e-4 && (m[1] - h / 3.0).abs() < 1e-4,
            "{m:?}"
        );
    }
}
