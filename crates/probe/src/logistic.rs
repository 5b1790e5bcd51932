//! L2-regularised logistic regression with an intercept, the model of scikit-learn's
//! `LogisticRegression(C=c, solver="lbfgs")` (L2 penalty, `fit_intercept=True`):
//!
//! ```text
//! minimise  C · Σ_i logloss_i + ½‖W‖²        (the intercept is not penalised)
//! ```
//!
//! - two classes: one weight vector `w` and intercept `b`, p(class 1 | x) = σ(x·w + b);
//! - K ≥ 3 classes: a weight vector and intercept per class, p(k | x) = softmax_k(x·W_kᵀ + b_k)
//!   (scikit-learn's multinomial model, its only one for K ≥ 3 since 1.8).
//!
//! The optimiser sees the objective divided by C·n, `mean logloss + ‖W‖² / (2Cn)`, as
//! scikit-learn's does: same minimiser, but values and gradients of order one whatever n and C,
//! so `gradient_tolerance` means what scikit-learn's `tol` means. L-BFGS starts from zeros.
//!
//! Cost: each evaluation is two dense products through faer, `Z = X·Wᵀ` and `G = Xᵀ·(P − Y)`,
//! with X converted once to f64 (8 bytes per value held for the whole fit): f32 products would
//! leave the objective too noisy for the line search near a tight tolerance.

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

use crate::lbfgs::{self, LbfgsOptions};
use crate::{ProbeError, Result};

#[derive(Clone, Debug, PartialEq)]
pub struct LogisticOptions {
    /// Inverse regularisation strength, scikit-learn's `C` (> 0).
    pub c: f64,
    pub lbfgs: LbfgsOptions,
}

impl Default for LogisticOptions {
    fn default() -> Self {
        LogisticOptions {
            c: 1.0,
            lbfgs: LbfgsOptions::default(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct LogisticModel {
    pub classes: usize,
    pub dim: usize,
    /// `[outputs, dim]` row-major: one row (class 1's score) for two classes, else one per
    /// class. scikit-learn's `coef_`.
    pub coef: Vec<f64>,
    /// `[outputs]`, scikit-learn's `intercept_`. For K ≥ 3 the intercepts of the classes seen
    /// sum to zero (softmax is unchanged by a common shift, the penalty does not fix one); a
    /// class with no training row has a zero coefficient row and intercept −∞ (probability 0),
    /// the limit its unpenalised intercept runs to.
    pub intercept: Vec<f64>,
    pub iterations: usize,
    /// Whether L-BFGS reached `gradient_tolerance` on the scaled objective.
    pub converged: bool,
}

/// Fits on `x` (`[rows, dim]` row-major) with `labels` in `0..classes`.
///
/// Errors name the field: `classes` (< 2), `c` (not finite and positive), `x` (empty, wrong
/// length, a non-finite value), `labels` (wrong length, out of range, fewer than two classes
/// present).
pub fn fit(
    x: &[f32],
    rows: usize,
    dim: usize,
    labels: &[u32],
    classes: usize,
    options: &LogisticOptions,
) -> Result<LogisticModel> {
    if classes < 2 {
        return Err(ProbeError::invalid(
            "classes",
            format!("need at least 2, got {classes}"),
        ));
    }
    if !(options.c.is_finite() && options.c > 0.0) {
        return Err(ProbeError::invalid(
            "c",
            format!("must be finite and positive, got {}", options.c),
        ));
    }
    if rows == 0 || dim == 0 {
        return Err(ProbeError::invalid(
            "x",
            format!("no data ({rows} rows × {dim} dims)"),
        ));
    }
    if x.len() != rows * dim {
        return Err(ProbeError::invalid(
            "x",
            format!("{} values for {rows} rows × {dim} dims", x.len()),
        ));
    }
    if labels.len() != rows {
        return Err(ProbeError::invalid(
            "labels",
            format!("{} labels for {rows} rows", labels.len()),
        ));
    }
    let mut counts = vec![0usize; classes];
    for (row, &label) in labels.iter().enumerate() {
        let Some(count) = counts.get_mut(label as usize) else {
            return Err(ProbeError::invalid(
                "labels",
                format!("row {row} has label {label}, outside 0..{classes}"),
            ));
        };
        *count += 1;
    }
    // Classes with no row are left out of the optimisation (see `LogisticModel::intercept`).
    let present: Vec<usize> = (0..classes).filter(|&k| counts[k] > 0).collect();
    if present.len() < 2 {
        return Err(ProbeError::invalid(
            "labels",
            format!("need rows of at least 2 classes, found {}", present.len()),
        ));
    }
    let x_nd = to_f64(x, dim)?;

    let binary = classes == 2;
    let outputs = if binary { 1 } else { present.len() };
    let mut compact = vec![0u32; classes];
    for (index, &k) in present.iter().enumerate() {
        compact[k] = index as u32;
    }
    let mut objective = Objective {
        x_nd: MatRef::from_row_major_slice(&x_nd, rows, dim),
        targets: labels.iter().map(|&l| compact[l as usize]).collect(),
        outputs,
        binary,
        l2: 1.0 / (options.c * rows as f64),
        scores_no: vec![0.0; rows * outputs],
    };
    let theta0 = vec![0.0; outputs * (dim + 1)];
    let minimum = lbfgs::minimize(theta0, &options.lbfgs, |theta, grad| {
        objective.evaluate(theta, grad)
    });

    let (w, b) = minimum.x.split_at(outputs * dim);
    let (coef, intercept) = if binary {
        (w.to_vec(), b.to_vec())
    } else {
        // Starting from zeros, every gradient and so every iterate keeps Σ_k b_k = 0; centring
        // removes the rounding drift and makes the representative explicit.
        let mean = b.iter().sum::<f64>() / outputs as f64;
        let mut coef = vec![0.0; classes * dim];
        let mut intercept = vec![f64::NEG_INFINITY; classes];
        for (index, &k) in present.iter().enumerate() {
            coef[k * dim..(k + 1) * dim].copy_from_slice(&w[index * dim..(index + 1) * dim]);
            intercept[k] = b[index] - mean;
        }
        (coef, intercept)
    };
    Ok(LogisticModel {
        classes,
        dim,
        coef,
        intercept,
        iterations: minimum.iterations,
        converged: minimum.converged,
    })
}

/// `x` as f64, refusing non-finite values.
fn to_f64(x: &[f32], dim: usize) -> Result<Vec<f64>> {
    let mut out = vec![0.0; x.len()];
    let bad = out
        .par_chunks_mut(dim)
        .zip(x.par_chunks(dim))
        .enumerate()
        .filter_map(|(row, (dst, src))| {
            let mut finite = true;
            for (d, &s) in dst.iter_mut().zip(src) {
                finite &= s.is_finite();
                *d = f64::from(s);
            }
            (!finite).then_some(row)
        })
        .min();
    match bad {
        Some(row) => Err(ProbeError::invalid(
            "x",
            format!("row {row} has a non-finite value"),
        )),
        None => Ok(out),
    }
}

/// `mean logloss + ‖W‖² / (2Cn)` over θ = [W as `[outputs, dim]` row-major, b as `[outputs]`].
struct Objective<'a> {
    x_nd: MatRef<'a, f64>,
    /// Per row: the class (binary) or its index among the present classes.
    targets: Vec<u32>,
    outputs: usize,
    binary: bool,
    /// 1 / (C·n).
    l2: f64,
    /// `[rows, outputs]`: scores, then overwritten by the residuals P − Y.
    scores_no: Vec<f64>,
}

impl Objective<'_> {
    fn evaluate(&mut self, theta: &[f64], grad: &mut [f64]) -> f64 {
        let (rows, dim) = (self.x_nd.nrows(), self.x_nd.ncols());
        let outputs = self.outputs;
        let (w, b) = theta.split_at(outputs * dim);
        // W stored [outputs, dim] row-major is Wᵀ [dim, outputs] column-major: no copy.
        let w_t = MatRef::from_column_major_slice(w, dim, outputs);
        matmul(
            MatMut::from_row_major_slice_mut(&mut self.scores_no, rows, outputs),
            Accum::Replace,
            self.x_nd,
            w_t,
            1.0,
            Par::rayon(0),
        );

        let (grad_w, grad_b) = grad.split_at_mut(outputs * dim);
        grad_b.fill(0.0);
        let mut loss = 0.0;
        for (row, &target) in self.scores_no.chunks_exact_mut(outputs).zip(&self.targets) {
            for (z, bias) in row.iter_mut().zip(b) {
                *z += bias;
            }
            loss += if self.binary {
                binary_loss_and_residual(&mut row[0], target)
            } else {
                softmax_loss_and_residual(row, target as usize)
            };
            for (g, r) in grad_b.iter_mut().zip(row.iter()) {
                *g += r;
            }
        }
        let inv_rows = 1.0 / rows as f64;
        for g in grad_b.iter_mut() {
            *g *= inv_rows;
        }

        // ∇_W = Rᵀ·X / n + W / (Cn), written as its transpose Xᵀ·R [dim, outputs] column-major.
        for (g, wi) in grad_w.iter_mut().zip(w) {
            *g = self.l2 * wi;
        }
        matmul(
            MatMut::from_column_major_slice_mut(grad_w, dim, outputs),
            Accum::Add,
            self.x_nd.transpose(),
            MatRef::from_row_major_slice(&self.scores_no, rows, outputs),
            inv_rows,
            Par::rayon(0),
        );

        let w_sq: f64 = w.iter().map(|v| v * v).sum();
        loss * inv_rows + 0.5 * self.l2 * w_sq
    }
}

/// Log-loss of score z for label y ∈ {0, 1}, `ln(1 + eᶻ) − y·z`; z becomes σ(z) − y.
fn binary_loss_and_residual(z: &mut f64, y: u32) -> f64 {
    let s = *z;
    let y = f64::from(y);
    // ln(1 + eᶻ) = max(z, 0) + ln(1 + e^{−|z|}): no overflow for large |z|.
    let softplus = s.max(0.0) + (-s.abs()).exp().ln_1p();
    *z = sigmoid(s) - y;
    softplus - y * s
}

/// Log-loss of scores z for class y, `logsumexp(z) − z_y`; z becomes softmax(z) − onehot(y).
fn softmax_loss_and_residual(z: &mut [f64], y: usize) -> f64 {
    let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let target = z[y];
    let mut sum = 0.0;
    for v in z.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    for v in z.iter_mut() {
        *v /= sum;
    }
    z[y] -= 1.0;
    max + sum.ln() - target
}

fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// Rows converted to f64 per product: bounds the copy of a large input.
const PREDICT_CHUNK_ROWS: usize = 2048;

impl LogisticModel {
    fn outputs(&self) -> usize {
        self.intercept.len()
    }

    /// Scores `x·Wᵀ + b`, `[rows, 1]` for two classes (positive favours class 1, scikit-learn's
    /// `decision_function`), else `[rows, classes]`.
    ///
    /// # Panics
    /// If `x.len() != rows * dim`.
    pub fn decision(&self, x: &[f32], rows: usize) -> Vec<f64> {
        assert_eq!(x.len(), rows * self.dim, "x: expected rows × dim values");
        let (dim, outputs) = (self.dim, self.outputs());
        let mut scores = vec![0.0; rows * outputs];
        let w_t = MatRef::from_column_major_slice(&self.coef, dim, outputs);
        let mut x64 = Vec::new();
        for (x_chunk, out_chunk) in x
            .chunks(PREDICT_CHUNK_ROWS * dim)
            .zip(scores.chunks_mut(PREDICT_CHUNK_ROWS * outputs))
        {
            let n = x_chunk.len() / dim;
            x64.clear();
            x64.extend(x_chunk.iter().map(|&v| f64::from(v)));
            matmul(
                MatMut::from_row_major_slice_mut(out_chunk, n, outputs),
                Accum::Replace,
                MatRef::from_row_major_slice(&x64, n, dim),
                w_t,
                1.0,
                Par::rayon(0),
            );
            for row in out_chunk.chunks_exact_mut(outputs) {
                for (z, b) in row.iter_mut().zip(&self.intercept) {
                    *z += b;
                }
            }
        }
        scores
    }

    /// Class probabilities, `[rows, classes]` (scikit-learn's `predict_proba`).
    ///
    /// # Panics
    /// If `x.len() != rows * dim`.
    pub fn predict_proba(&self, x: &[f32], rows: usize) -> Vec<f64> {
        let scores = self.decision(x, rows);
        if self.classes == 2 {
            scores
                .iter()
                .flat_map(|&z| {
                    let p = sigmoid(z);
                    [1.0 - p, p]
                })
                .collect()
        } else {
            let mut p = scores;
            for row in p.chunks_exact_mut(self.classes) {
                let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let mut sum = 0.0;
                for v in row.iter_mut() {
                    *v = (*v - max).exp();
                    sum += *v;
                }
                for v in row.iter_mut() {
                    *v /= sum;
                }
            }
            p
        }
    }

    /// The most probable class per row; ties go to the lower class, as numpy's argmax does.
    ///
    /// # Panics
    /// If `x.len() != rows * dim`.
    pub fn predict(&self, x: &[f32], rows: usize) -> Vec<u32> {
        let scores = self.decision(x, rows);
        if self.classes == 2 {
            scores.iter().map(|&z| u32::from(z > 0.0)).collect()
        } else {
            scores
                .chunks_exact(self.classes)
                .map(|row| {
                    let mut best = 0;
                    for (k, &z) in row.iter().enumerate() {
                        if z > row[best] {
                            best = k;
                        }
                    }
                    best as u32
                })
                .collect()
        }
    }
}

/// Fraction of rows where `pred` equals `truth`; NaN when empty.
///
/// # Panics
/// If the lengths differ.
pub fn accuracy(pred: &[u32], truth: &[u32]) -> f64 {
    assert_eq!(
        pred.len(),
        truth.len(),
        "pred and truth must have equal lengths"
    );
    let right = pred.iter().zip(truth).filter(|(p, t)| p == t).count();
    right as f64 / truth.len() as f64
}

/// F1 averaged over the classes that occur in `truth` or `pred`, scikit-learn's
/// `f1_score(truth, pred, average="macro")` (a class in neither is not counted); NaN when empty.
///
/// # Panics
/// If the lengths differ or a label is not below `classes`.
pub fn macro_f1(pred: &[u32], truth: &[u32], classes: usize) -> f64 {
    assert_eq!(
        pred.len(),
        truth.len(),
        "pred and truth must have equal lengths"
    );
    // Per class: true positives, predicted count, true count.
    let mut tp = vec![0usize; classes];
    let mut predicted = vec![0usize; classes];
    let mut actual = vec![0usize; classes];
    for (&p, &t) in pred.iter().zip(truth) {
        assert!(
            (p as usize) < classes && (t as usize) < classes,
            "label outside 0..{classes}"
        );
        predicted[p as usize] += 1;
        actual[t as usize] += 1;
        if p == t {
            tp[p as usize] += 1;
        }
    }
    let (sum, seen) = (0..classes).filter(|&k| predicted[k] + actual[k] > 0).fold(
        (0.0, 0usize),
        |(sum, seen), k| {
            // F1 = 2·tp / (2·tp + fp + fn) = 2·tp / (predicted + actual).
            let f1 = 2.0 * tp[k] as f64 / (predicted[k] + actual[k]) as f64;
            (sum + f1, seen + 1)
        },
    );
    sum / seen as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic pseudo-random stream in [-1, 1).
    fn stream(seed: u64) -> impl FnMut() -> f64 {
        let mut state = seed;
        move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 52) as f64 - 1.0
        }
    }

    fn problem(rows: usize, dim: usize, classes: usize, seed: u64) -> (Vec<f32>, Vec<u32>) {
        let mut next = stream(seed);
        let x: Vec<f32> = (0..rows * dim).map(|_| (2.0 * next()) as f32).collect();
        let labels = (0..rows)
            .map(|r| {
                // A noisy linear rule, so that neither class is separable.
                let s = x[r * dim] as f64 - 0.5 * x[r * dim + 1] as f64 + next();
                ((s + 3.0).max(0.0) as usize * classes / 6).min(classes - 1) as u32
            })
            .collect();
        (x, labels)
    }

    /// The analytic gradient against central differences of the value, at a point away from
    /// zero, for both the sigmoid and the softmax objectives.
    #[test]
    fn gradient_matches_finite_differences() {
        for (classes, outputs) in [(2, 1), (4, 4)] {
            let (rows, dim) = (30, 5);
            let (x, labels) = problem(rows, dim, classes, 7 + classes as u64);
            let x_nd: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
            let mut objective = Objective {
                x_nd: MatRef::from_row_major_slice(&x_nd, rows, dim),
                targets: labels,
                outputs,
                binary: classes == 2,
                l2: 1.0 / (0.3 * rows as f64),
                scores_no: vec![0.0; rows * outputs],
            };
            let mut next = stream(99);
            let theta: Vec<f64> = (0..outputs * (dim + 1)).map(|_| next()).collect();
            let mut grad = vec![0.0; theta.len()];
            objective.evaluate(&theta, &mut grad);
            let mut scratch = vec![0.0; theta.len()];
            let h = 1e-5;
            for i in 0..theta.len() {
                let mut plus = theta.clone();
                plus[i] += h;
                let mut minus = theta.clone();
                minus[i] -= h;
                let numeric = (objective.evaluate(&plus, &mut scratch)
                    - objective.evaluate(&minus, &mut scratch))
                    / (2.0 * h);
                assert!(grad[i].abs() > 1e-4, "a zero gradient would test nothing");
                assert!(
                    (numeric - grad[i]).abs() <= 1e-8,
                    "classes {classes}, θ[{i}]: {numeric} vs {}",
                    grad[i]
                );
            }
        }
    }

    #[test]
    fn stable_for_huge_scores() {
        let mut z = 800.0;
        assert_eq!(binary_loss_and_residual(&mut z, 1), 0.0);
        assert_eq!(z, 0.0);
        let mut z = 800.0;
        assert_eq!(binary_loss_and_residual(&mut z, 0), 800.0);
        let mut z = [-900.0, 900.0, 0.0];
        assert_eq!(softmax_loss_and_residual(&mut z, 0), 1800.0);
        assert_eq!(z, [-1.0, 1.0, 0.0]);
    }

    #[test]
    fn a_class_without_rows_gets_probability_zero() {
        let (x, labels) = problem(120, 3, 3, 5);
        // Relabel into 0, 1, 3 of 4 classes: class 2 has no row.
        let labels: Vec<u32> = labels.iter().map(|&l| if l == 2 { 3 } else { l }).collect();
        let model = fit(&x, 120, 3, &labels, 4, &LogisticOptions::default()).unwrap();
        assert!(model.converged);
        assert_eq!(model.intercept[2], f64::NEG_INFINITY);
        assert!(model.coef[6..9].iter().all(|&w| w == 0.0));
        let seen: f64 = [0, 1, 3].iter().map(|&k| model.intercept[k]).sum();
        assert!(seen.abs() < 1e-12, "{seen}");
        let p = model.predict_proba(&x, 120);
        for row in p.chunks_exact(4) {
            assert_eq!(row[2], 0.0);
            assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        }
        assert!(model.predict(&x, 120).iter().all(|&k| k != 2));
    }

    #[test]
    fn predictions_agree_with_probabilities() {
        for classes in [2, 5] {
            let (x, labels) = problem(200, 4, classes, 11);
            let model = fit(&x, 200, 4, &labels, classes, &LogisticOptions::default()).unwrap();
            let p = model.predict_proba(&x, 200);
            let pred = model.predict(&x, 200);
            for (row, &k) in p.chunks_exact(classes).zip(&pred) {
                let best = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                assert_eq!(row[k as usize], best);
            }
            assert!(accuracy(&pred, &labels) > 0.5, "classes {classes}");
        }
    }

    #[test]
    fn input_errors_name_their_field() {
        let (x, labels) = problem(10, 2, 2, 3);
        let options = LogisticOptions::default();
        let field = |r: Result<LogisticModel>| match r {
            Err(ProbeError::Invalid { field, .. }) => field,
            other => panic!("expected an Invalid error, got {other:?}"),
        };
        assert_eq!(field(fit(&x, 10, 2, &labels, 1, &options)), "classes");
        assert_eq!(field(fit(&x, 0, 2, &[], 2, &options)), "x");
        assert_eq!(field(fit(&x[..19], 10, 2, &labels, 2, &options)), "x");
        assert_eq!(field(fit(&x, 10, 2, &labels[..9], 2, &options)), "labels");
        let mut out_of_range = labels.clone();
        out_of_range[4] = 2;
        assert_eq!(field(fit(&x, 10, 2, &out_of_range, 2, &options)), "labels");
        for c in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let bad = LogisticOptions {
                c,
                ..options.clone()
            };
            assert_eq!(field(fit(&x, 10, 2, &labels, 2, &bad)), "c");
        }
    }

    /// scikit-learn's documented example: `f1_score([0, 1, 2, 0, 1, 2], [0, 2, 1, 0, 0, 1],
    /// average="macro")` is 0.2666…
    #[test]
    fn macro_f1_matches_the_scikit_learn_example() {
        let truth = [0, 1, 2, 0, 1, 2];
        let pred = [0, 2, 1, 0, 0, 1];
        assert!((macro_f1(&pred, &truth, 3) - 0.26666666666666666).abs() < 1e-15);
        assert!((accuracy(&pred, &truth) - 2.0 / 6.0).abs() < 1e-15);
    }

    #[test]
    fn macro_f1_counts_classes_seen_in_either_and_no_other() {
        // Class 3 only predicted (F1 0), class 4 in neither (not counted).
        let truth = [0, 0, 1, 1];
        let pred = [0, 3, 1, 1];
        // Class 0: 2·1 / (1 + 2) = 2/3; class 1: 1; class 3: 0.
        let want = (2.0 / 3.0 + 1.0 + 0.0) / 3.0;
        assert!((macro_f1(&pred, &truth, 5) - want).abs() < 1e-15);
    }
}
