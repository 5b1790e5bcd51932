//! L-BFGS for smooth unconstrained minimisation in f64: the two-loop recursion of Nocedal &
//! Wright, *Numerical Optimization* (2nd ed.), Algorithm 7.4, with the strong-Wolfe line search
//! of their Algorithms 3.5 (bracketing) and 3.6 (zoom, safeguarded cubic interpolation).
//!
//! Written here rather than taken from linfa: linfa-logistic pulls in ndarray and argmin, and
//! this crate needs one smooth convex objective (the logistic loss), for which a few hundred
//! lines that can be read in one sitting are enough.
//!
//! Robustness choices:
//! - a curvature pair with `sᵀy ≤ ε·yᵀy` is dropped, so the inverse-Hessian estimate stays
//!   positive definite even after a line search that only met the sufficient-decrease condition;
//! - a non-finite value or gradient at a trial step counts as "too far": the step shrinks;
//! - if the quasi-Newton direction is not a descent direction or its line search fails, the
//!   memory is cleared and steepest descent is tried once before giving up.

use std::collections::VecDeque;

/// Sufficient-decrease (Armijo) constant of the Wolfe conditions.
const C1: f64 = 1e-4;
/// Curvature constant: 0.9 is the usual choice for quasi-Newton methods (N&W §3.1), where a
/// loose line search saves evaluations and the unit step is usually accepted.
const C2: f64 = 0.9;
/// Relative rounding level assumed for f: a sum of many terms is good to far fewer digits than
/// one f64 (see `LineSearch::sufficient_decrease`).
const VALUE_NOISE: f64 = 1e-12;
/// Objective evaluations allowed per line search (scikit-learn passes `maxls=50` to SciPy).
const MAX_SEARCH_EVALUATIONS: usize = 50;

#[derive(Clone, Debug, PartialEq)]
pub struct LbfgsOptions {
    /// Number of curvature pairs kept (at least 1).
    pub memory: usize,
    /// Accepted steps allowed before giving up.
    pub max_iterations: usize,
    /// Converged when the largest absolute gradient component is at most this.
    pub gradient_tolerance: f64,
}

impl Default for LbfgsOptions {
    fn default() -> Self {
        LbfgsOptions {
            memory: 10,
            max_iterations: 1000,
            gradient_tolerance: 1e-6,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Minimum {
    /// The last accepted point (the starting point if no step was taken).
    pub x: Vec<f64>,
    /// The objective at `x`.
    pub value: f64,
    /// Largest absolute gradient component at `x`.
    pub max_gradient: f64,
    /// Accepted steps.
    pub iterations: usize,
    /// Objective evaluations, line searches included.
    pub evaluations: usize,
    /// `max_gradient ≤ gradient_tolerance`. False after `max_iterations`, when no step along
    /// steepest descent decreases the objective any more (typically the limit of f64 precision
    /// for a tolerance set too tight), or when the objective is not finite at `x0`.
    pub converged: bool,
}

/// Minimises `objective`, which returns f(x) and writes ∇f(x) into its second argument.
pub fn minimize<F>(x0: Vec<f64>, options: &LbfgsOptions, mut objective: F) -> Minimum
where
    F: FnMut(&[f64], &mut [f64]) -> f64,
{
    let n = x0.len();
    let mut x = x0;
    let mut grad = vec![0.0; n];
    let mut value = objective(&x, &mut grad);
    let mut evaluations = 1;
    let mut iterations = 0;
    let mut history = History::new(options.memory.max(1));
    let mut direction = vec![0.0; n];
    let mut x_next = vec![0.0; n];
    let mut grad_next = vec![0.0; n];

    let converged = loop {
        let max_gradient = max_abs(&grad);
        if !value.is_finite() || !max_gradient.is_finite() {
            break false;
        }
        if max_gradient <= options.gradient_tolerance {
            break true;
        }
        if iterations >= options.max_iterations {
            break false;
        }

        let mut step = None;
        // Quasi-Newton first; on failure, one try along steepest descent with a fresh memory.
        for steepest in [false, true] {
            if steepest {
                if history.is_empty() {
                    break;
                }
                history.clear();
            }
            history.direction(&grad, &mut direction);
            let mut slope = dot(&grad, &direction);
            if slope >= 0.0 || !slope.is_finite() {
                history.clear();
                history.direction(&grad, &mut direction);
                slope = dot(&grad, &direction);
            }
            // Without curvature information the direction has no natural length: the first
            // trial moves a unit distance, as SciPy's L-BFGS-B does.
            let initial = if history.is_empty() {
                1.0 / dot(&direction, &direction).sqrt()
            } else {
                1.0
            };
            let mut search = LineSearch {
                x: &x,
                direction: &direction,
                value,
                slope,
                objective: &mut objective,
                x_trial: &mut x_next,
                grad_trial: &mut grad_next,
                evaluations: 0,
            };
            step = search.run(initial);
            evaluations += search.evaluations;
            if step.is_some() {
                break;
            }
        }
        let Some(accepted) = step else {
            break false;
        };

        history.push(&x, &x_next, &grad, &grad_next);
        std::mem::swap(&mut x, &mut x_next);
        std::mem::swap(&mut grad, &mut grad_next);
        value = accepted.value;
        iterations += 1;
    };

    Minimum {
        max_gradient: max_abs(&grad),
        x,
        value,
        iterations,
        evaluations,
        converged,
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(p, q)| p * q).sum()
}

fn max_abs(v: &[f64]) -> f64 {
    // A NaN must not hide behind `f64::max`, which ignores it.
    v.iter().fold(
        0.0,
        |m: f64, &g| {
            if g.is_nan() {
                f64::NAN
            } else {
                m.max(g.abs())
            }
        },
    )
}

/// The last `capacity` curvature pairs `s = x₊ − x`, `y = ∇f₊ − ∇f`, oldest first.
struct History {
    capacity: usize,
    s: VecDeque<Vec<f64>>,
    y: VecDeque<Vec<f64>>,
    /// 1 / (sᵀy) per pair.
    rho: VecDeque<f64>,
    /// Scratch for the two-loop recursion's α coefficients.
    alpha: Vec<f64>,
}

impl History {
    fn new(capacity: usize) -> Self {
        History {
            capacity,
            s: VecDeque::with_capacity(capacity),
            y: VecDeque::with_capacity(capacity),
            rho: VecDeque::with_capacity(capacity),
            alpha: vec![0.0; capacity],
        }
    }

    fn is_empty(&self) -> bool {
        self.rho.is_empty()
    }

    fn clear(&mut self) {
        self.s.clear();
        self.y.clear();
        self.rho.clear();
    }

    /// Stores the pair of a step from (x, g) to (x₊, g₊), unless `sᵀy` is too small for the
    /// update to keep the inverse-Hessian estimate positive definite.
    fn push(&mut self, x: &[f64], x_next: &[f64], g: &[f64], g_next: &[f64]) {
        let (mut s, mut y) = if self.rho.len() == self.capacity {
            self.rho.pop_front();
            (
                self.s.pop_front().expect("as many s as rho"),
                self.y.pop_front().expect("as many y as rho"),
            )
        } else {
            (vec![0.0; x.len()], vec![0.0; x.len()])
        };
        for i in 0..x.len() {
            s[i] = x_next[i] - x[i];
            y[i] = g_next[i] - g[i];
        }
        let sy = dot(&s, &y);
        let yy = dot(&y, &y);
        if sy > f64::EPSILON * yy && sy.is_finite() && yy.is_finite() {
            self.s.push_back(s);
            self.y.push_back(y);
            self.rho.push_back(1.0 / sy);
        }
    }

    /// `direction = −H·g` by the two-loop recursion, with H₀ = (sᵀy / yᵀy)·I from the newest
    /// pair (N&W eq. 7.20); `−g` when the memory is empty.
    fn direction(&mut self, g: &[f64], direction: &mut [f64]) {
        for (d, gi) in direction.iter_mut().zip(g) {
            *d = -gi;
        }
        let m = self.rho.len();
        for k in (0..m).rev() {
            let a = self.rho[k] * dot(&self.s[k], direction);
            self.alpha[k] = a;
            axpy(-a, &self.y[k], direction);
        }
        if let (Some(s), Some(y)) = (self.s.back(), self.y.back()) {
            let gamma = dot(s, y) / dot(y, y);
            for d in direction.iter_mut() {
                *d *= gamma;
            }
        }
        for k in 0..m {
            let b = self.rho[k] * dot(&self.y[k], direction);
            axpy(self.alpha[k] - b, &self.s[k], direction);
        }
    }
}

/// `y += a·x`.
fn axpy(a: f64, x: &[f64], y: &mut [f64]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += a * xi;
    }
}

/// φ(α) = f(x + α·d) at one trial step, with φ'(α) = ∇f(x + α·d)ᵀd.
#[derive(Clone, Copy, Debug)]
struct Trial {
    alpha: f64,
    value: f64,
    slope: f64,
}

impl Trial {
    fn is_finite(&self) -> bool {
        self.value.is_finite() && self.slope.is_finite()
    }
}

/// A strong-Wolfe line search from `x` along `direction`. After `run` returns a trial,
/// `x_trial` and `grad_trial` hold that point and its gradient.
struct LineSearch<'a, F> {
    x: &'a [f64],
    direction: &'a [f64],
    /// φ(0) and φ'(0) < 0.
    value: f64,
    slope: f64,
    objective: &'a mut F,
    x_trial: &'a mut [f64],
    grad_trial: &'a mut [f64],
    evaluations: usize,
}

impl<F: FnMut(&[f64], &mut [f64]) -> f64> LineSearch<'_, F> {
    fn evaluate(&mut self, alpha: f64) -> Trial {
        for ((xt, x), d) in self.x_trial.iter_mut().zip(self.x).zip(self.direction) {
            *xt = x + alpha * d;
        }
        let value = (self.objective)(self.x_trial, self.grad_trial);
        self.evaluations += 1;
        Trial {
            alpha,
            value,
            slope: dot(self.grad_trial, self.direction),
        }
    }

    fn sufficient_decrease(&self, t: &Trial) -> bool {
        let armijo = t.value <= self.value + C1 * t.alpha * self.slope;
        // Near the minimum the decrease Armijo asks for falls below the rounding error of f
        // and the test becomes a coin toss. Hager & Zhang's approximate form (SIAM J. Optim.
        // 16, 2005, eq. 4.1) asks the same of the slope, which stays accurate: exact for a
        // quadratic φ, as long as f did not rise by more than its rounding level.
        let approximate = t.value <= self.value + VALUE_NOISE * self.value.abs()
            && t.slope <= (2.0 * C1 - 1.0) * self.slope;
        armijo || approximate
    }

    fn curvature(&self, t: &Trial) -> bool {
        t.slope.abs() <= -C2 * self.slope
    }

    /// N&W Algorithm 3.5: grow the step until an interval is known to hold a strong-Wolfe
    /// point, then zoom into it.
    fn run(&mut self, initial: f64) -> Option<Trial> {
        let mut previous = Trial {
            alpha: 0.0,
            value: self.value,
            slope: self.slope,
        };
        let mut alpha = initial;
        while self.evaluations < MAX_SEARCH_EVALUATIONS {
            let t = self.evaluate(alpha);
            if !t.is_finite()
                || !self.sufficient_decrease(&t)
                || (previous.alpha > 0.0 && t.value >= previous.value)
            {
                return self.zoom(previous, t);
            }
            if self.curvature(&t) {
                return Some(t);
            }
            if t.slope >= 0.0 {
                return self.zoom(t, previous);
            }
            previous = t;
            alpha *= 2.0;
        }
        self.fall_back(previous)
    }

    /// N&W Algorithm 3.6. `low` always meets sufficient decrease and has the lowest value seen
    /// among those that do; the interval between `low` and `high` holds a strong-Wolfe step.
    fn zoom(&mut self, mut low: Trial, mut high: Trial) -> Option<Trial> {
        while self.evaluations < MAX_SEARCH_EVALUATIONS {
            let width = (high.alpha - low.alpha).abs();
            if width <= f64::EPSILON * low.alpha.max(high.alpha) {
                break;
            }
            let t = self.evaluate(interpolate(&low, &high));
            if !t.is_finite() || !self.sufficient_decrease(&t) || t.value >= low.value {
                high = t;
                continue;
            }
            if self.curvature(&t) {
                return Some(t);
            }
            if t.slope * (high.alpha - low.alpha) >= 0.0 {
                high = low;
            }
            low = t;
        }
        self.fall_back(low)
    }

    /// Out of evaluations or interval: a step that met sufficient decrease is still progress,
    /// so take it (`push` drops its curvature pair if sᵀy is not positive).
    fn fall_back(&mut self, low: Trial) -> Option<Trial> {
        if low.alpha <= 0.0 {
            return None;
        }
        let t = self.evaluate(low.alpha);
        (t.is_finite() && self.sufficient_decrease(&t)).then_some(t)
    }
}

/// The minimiser of the cubic through both ends' values and slopes (N&W eq. 3.59), kept at
/// least a tenth of the interval away from either end; bisection when the far end is not finite
/// or the cubic has no usable minimiser.
fn interpolate(low: &Trial, high: &Trial) -> f64 {
    let (a, b) = (low.alpha, high.alpha);
    let midpoint = 0.5 * (a + b);
    if !high.is_finite() {
        return midpoint;
    }
    let d1 = low.slope + high.slope - 3.0 * (low.value - high.value) / (a - b);
    let discriminant = d1 * d1 - low.slope * high.slope;
    if discriminant < 0.0 {
        return midpoint;
    }
    let d2 = (b - a).signum() * discriminant.sqrt();
    let alpha = b - (b - a) * (high.slope + d2 - d1) / (high.slope - low.slope + 2.0 * d2);
    let (lo, hi) = (a.min(b), a.max(b));
    let margin = 0.1 * (hi - lo);
    if alpha.is_finite() {
        alpha.clamp(lo + margin, hi - margin)
    } else {
        midpoint
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tight() -> LbfgsOptions {
        LbfgsOptions {
            gradient_tolerance: 1e-10,
            ..LbfgsOptions::default()
        }
    }

    /// The chained Rosenbrock function Σ 100(x_{i+1} − x_i²)² + (1 − x_i)², minimum 0 at ones.
    fn rosenbrock(x: &[f64], grad: &mut [f64]) -> f64 {
        grad.fill(0.0);
        let mut f = 0.0;
        for i in 0..x.len() - 1 {
            let a = x[i + 1] - x[i] * x[i];
            let b = 1.0 - x[i];
            f += 100.0 * a * a + b * b;
            grad[i] += -400.0 * a * x[i] - 2.0 * b;
            grad[i + 1] += 200.0 * a;
        }
        f
    }

    fn assert_at_ones(m: &Minimum) {
        assert!(m.converged, "{m:?}");
        for (i, v) in m.x.iter().enumerate() {
            assert!((v - 1.0).abs() <= 1e-6, "x[{i}] = {v}");
        }
        assert!(m.value < 1e-12, "{}", m.value);
    }

    #[test]
    fn rosenbrock_2d_from_the_classic_start() {
        let m = minimize(vec![-1.2, 1.0], &tight(), rosenbrock);
        assert_at_ones(&m);
        assert!(m.iterations < 100, "{m:?}");
    }

    #[test]
    fn rosenbrock_10d() {
        let x0: Vec<f64> = (0..10)
            .map(|i| if i % 2 == 0 { -1.2 } else { 1.0 })
            .collect();
        let m = minimize(x0, &tight(), rosenbrock);
        assert_at_ones(&m);
    }

    /// ½ (x − m)ᵀ A (x − m) with A = Σ λ_k q_k q_kᵀ, a rotation of a diagonal with condition
    /// number 10⁴, so that no coordinate is aligned with an eigenvector.
    #[test]
    fn ill_conditioned_quadratic_reaches_its_known_minimum() {
        let n = 20;
        let minimum: Vec<f64> = (0..n).map(|i| (i as f64 * 0.7).sin() * 3.0).collect();
        // Householder reflection Q = I − 2uuᵀ/uᵀu, orthogonal.
        let u: Vec<f64> = (0..n).map(|i| 1.0 + (i as f64 * 1.3).cos()).collect();
        let uu = dot(&u, &u);
        let q = |i: usize, j: usize| f64::from(i == j) - 2.0 * u[i] * u[j] / uu;
        let lambda: Vec<f64> = (0..n)
            .map(|k| 10f64.powf(4.0 * k as f64 / (n - 1) as f64))
            .collect();
        let a: Vec<f64> = (0..n * n)
            .map(|ij| {
                let (i, j) = (ij / n, ij % n);
                (0..n).map(|k| q(i, k) * lambda[k] * q(j, k)).sum()
            })
            .collect();
        let m = minimize(vec![0.0; n], &tight(), |x, grad| {
            let e: Vec<f64> = x.iter().zip(&minimum).map(|(x, m)| x - m).collect();
            for i in 0..n {
                grad[i] = dot(&a[i * n..(i + 1) * n], &e);
            }
            0.5 * dot(&e, grad)
        });
        assert!(m.converged, "{m:?}");
        for (v, want) in m.x.iter().zip(&minimum) {
            // Error ≤ ‖g‖/λ_min ≤ √n · 1e-10.
            assert!((v - want).abs() <= 1e-8, "{v} vs {want}");
        }
    }

    /// Σ x_i − ln x_i is undefined for x ≤ 0. Far from its minimum (at ones) it is nearly
    /// linear, so the secant steps overshoot into x < 0 and must be shrunk.
    #[test]
    fn steps_into_non_finite_values_are_shrunk() {
        let mut non_finite = 0;
        let m = minimize(vec![10.0, 30.0, 0.5], &tight(), |x, grad| {
            let mut f = 0.0;
            for (g, &v) in grad.iter_mut().zip(x) {
                *g = 1.0 - 1.0 / v;
                f += v - v.ln();
            }
            if !f.is_finite() {
                non_finite += 1;
            }
            f
        });
        assert!(non_finite > 0, "the test must reach the undefined region");
        assert!(m.converged, "{m:?}");
        for v in &m.x {
            assert!((v - 1.0).abs() <= 1e-9, "{v}");
        }
    }

    /// 1 + Rosenbrock with 10⁻¹⁴ of deterministic noise on the value only, as rounding puts on
    /// a long sum: the last steps to a 10⁻¹⁰ gradient decrease f by less than the noise, and
    /// plain Armijo rejects about half of them at random.
    #[test]
    fn converges_when_decreases_fall_below_rounding() {
        let noisy = |x: &[f64], grad: &mut [f64]| {
            let hash = x.iter().fold(0u64, |h, v| {
                (h ^ v.to_bits()).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            });
            let unit = (hash >> 11) as f64 / (1u64 << 52) as f64 - 1.0;
            1.0 + rosenbrock(x, grad) + 1e-14 * unit
        };
        let x0: Vec<f64> = (0..10)
            .map(|i| if i % 2 == 0 { -1.2 } else { 1.0 })
            .collect();
        let m = minimize(x0, &tight(), noisy);
        assert!(m.converged, "{m:?}");
        assert!(m.x.iter().all(|v| (v - 1.0).abs() <= 1e-6), "{m:?}");
    }

    #[test]
    fn stops_unconverged_at_the_iteration_limit() {
        let options = LbfgsOptions {
            max_iterations: 3,
            ..tight()
        };
        let m = minimize(vec![-1.2, 1.0], &options, rosenbrock);
        assert!(!m.converged);
        assert_eq!(m.iterations, 3);
        assert!(
            m.value < 24.2,
            "must still descend from f(x0) = 24.2: {}",
            m.value
        );
    }

    #[test]
    fn a_start_at_the_minimum_takes_no_step() {
        let m = minimize(vec![1.0, 1.0], &tight(), rosenbrock);
        assert!(m.converged);
        assert_eq!((m.iterations, m.evaluations), (0, 1));
    }

    #[test]
    fn non_finite_start_is_not_converged() {
        let m = minimize(vec![1.0], &tight(), |_, g| {
            g[0] = 0.0;
            f64::INFINITY
        });
        assert!(!m.converged);
        assert_eq!(m.iterations, 0);
    }
}
