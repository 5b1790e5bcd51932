//! Row selection, column statistics and standardisation of row-major `[rows, dim]` data.

/// The rows `keep` of `values`.
pub fn rows(values: &[f32], dim: usize, keep: &[usize]) -> Vec<f32> {
    let mut out = Vec::with_capacity(keep.len() * dim);
    for &r in keep {
        out.extend_from_slice(&values[r * dim..(r + 1) * dim]);
    }
    out
}

/// The columns `keep` of `values`, in that order.
pub fn columns(values: &[f32], dim: usize, keep: &[usize]) -> Vec<f32> {
    let n = values.len() / dim.max(1);
    let mut out = Vec::with_capacity(n * keep.len());
    for row in values.chunks_exact(dim) {
        out.extend(keep.iter().map(|&c| row[c]));
    }
    out
}

/// Per-column mean and standard deviation (population), in f64.
pub fn column_moments(values: &[f32], dim: usize) -> (Vec<f64>, Vec<f64>) {
    let n = (values.len() / dim.max(1)).max(1) as f64;
    let mut mean = vec![0f64; dim];
    for row in values.chunks_exact(dim) {
        for (m, &v) in mean.iter_mut().zip(row) {
            *m += f64::from(v);
        }
    }
    mean.iter_mut().for_each(|m| *m /= n);
    let mut var = vec![0f64; dim];
    for row in values.chunks_exact(dim) {
        for ((s, &v), m) in var.iter_mut().zip(row).zip(&mean) {
            let d = f64::from(v) - m;
            *s += d * d;
        }
    }
    let std = var.iter().map(|s| (s / n).sqrt()).collect();
    (mean, std)
}

/// Standardises columns with the training rows' moments (a constant column becomes 0), so
/// one L2 strength means the same for every representation.
pub struct Standardizer {
    mean: Vec<f64>,
    scale: Vec<f64>,
}

impl Standardizer {
    pub fn fit(train: &[f32], dim: usize) -> Self {
        let (mean, std) = column_moments(train, dim);
        let scale = std
            .iter()
            .map(|&s| if s > 1e-12 { 1.0 / s } else { 0.0 })
            .collect();
        Standardizer { mean, scale }
    }

    pub fn apply(&self, values: &[f32]) -> Vec<f32> {
        let dim = self.mean.len();
        let mut out = values.to_vec();
        for row in out.chunks_exact_mut(dim) {
            for ((v, m), s) in row.iter_mut().zip(&self.mean).zip(&self.scale) {
                *v = ((f64::from(*v) - m) * s) as f32;
            }
        }
        out
    }
}

/// Per-class column means of `values` (rows labelled `labels`), `[classes][dim]`.
pub fn class_means(values: &[f32], dim: usize, labels: &[u32], classes: usize) -> Vec<Vec<f64>> {
    let mut sums = vec![vec![0f64; dim]; classes];
    let mut counts = vec![0usize; classes];
    for (row, &l) in values.chunks_exact(dim).zip(labels) {
        counts[l as usize] += 1;
        for (s, &v) in sums[l as usize].iter_mut().zip(row) {
            *s += f64::from(v);
        }
    }
    for (s, &c) in sums.iter_mut().zip(&counts) {
        s.iter_mut().for_each(|v| *v /= c.max(1) as f64);
    }
    sums
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standardised_training_columns_have_mean_0_and_std_1() {
        let x = [1.0f32, 5.0, 3.0, 5.0, 5.0, 5.0];
        let s = Standardizer::fit(&x, 2);
        let z = s.apply(&x);
        let (mean, std) = column_moments(&z, 2);
        assert!(mean[0].abs() < 1e-6 && (std[0] - 1.0).abs() < 1e-6);
        // The constant column is zeroed rather than divided by zero.
        assert_eq!((z[1], z[3], z[5]), (0.0, 0.0, 0.0));
    }

    #[test]
    fn selections_and_class_means() {
        let x = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
        assert_eq!(rows(&x, 2, &[2, 0]), [5.0, 6.0, 1.0, 2.0]);
        assert_eq!(columns(&x, 2, &[1]), [2.0, 4.0, 6.0]);
        let m = class_means(&x, 2, &[0, 1, 0], 2);
        assert_eq!(m, [vec![3.0, 4.0], vec![3.0, 4.0]]);
    }
}
