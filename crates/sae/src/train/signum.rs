//! Sign descent with schedule-free averaging (Bernstein et al. 2018; Defazio et al. 2024), the
//! optimiser that learns most per token on small budgets (BENCHMARKS.md, "Quality per token").
//!
//! Three sequences: `z` takes the sign steps, `x` is their weighted running average (the
//! weights evaluated and saved), and the gradient is taken at `y = β·x + (1 − β)·z`, which is
//! what the trainer's weights hold between steps. Only `z` is stored: `x = (y − (1 − β)·z)/β`.
//! Storing `y` rather than `x` means that anything done to the weights between steps
//! (decoder rows renormalised, latents resampled) moves the average with them, as the
//! reference implementation's in-place swap does.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

const CHUNK: usize = 1 << 14;

/// What every parameter's update needs at one step.
#[derive(Clone, Copy, Debug)]
pub struct SignumStep {
    pub lr: f32,
    /// β: where between the average and the sign-descent iterate the gradient is taken.
    pub momentum: f32,
    /// Weight of the new iterate in the average this step (1/(t+1) at a constant lr).
    pub average_weight: f32,
}

/// The averaging weights' running state: each step weighs lr_max², as the reference does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AverageWeights {
    pub lr_max: f32,
    pub weight_sum: f64,
}

impl AverageWeights {
    /// The new iterate's weight in the average for a step at `lr`.
    pub fn next(&mut self, lr: f32) -> f32 {
        self.lr_max = self.lr_max.max(lr);
        let weight = (self.lr_max as f64).powi(2);
        self.weight_sum += weight;
        match self.weight_sum > 0.0 {
            true => (weight / self.weight_sum) as f32,
            false => 1.0,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Signum {
    /// The sign-descent iterate; empty until the first step (then the weights' copy).
    pub(super) z: Vec<f32>,
}

impl Signum {
    pub fn new() -> Self {
        Signum { z: Vec::new() }
    }

    /// Restarts latents re-initialised in `y[start..start + len]`: their average and iterate
    /// become the new values.
    pub fn reset(&mut self, y: &[f32], start: usize, len: usize) {
        if !self.z.is_empty() {
            self.z[start..start + len].copy_from_slice(&y[start..start + len]);
        }
    }

    /// One step: `z −= lr·sign(g)`, `x` moves towards `z` by the average weight, `y` is
    /// rebuilt from both. A zero gradient (a latent that did not fire) leaves `z` in place.
    pub fn update(&mut self, y: &mut [f32], grad: &[f32], s: SignumStep) {
        if self.z.is_empty() {
            self.z = y.to_vec();
        }
        let (beta, c, lr) = (s.momentum, s.average_weight, s.lr);
        y.par_chunks_mut(CHUNK)
            .zip(grad.par_chunks(CHUNK))
            .zip(self.z.par_chunks_mut(CHUNK))
            .for_each(|((y, g), z)| {
                for i in 0..y.len() {
                    let x = (y[i] - (1.0 - beta) * z[i]) / beta;
                    z[i] -= lr * sign(g[i]);
                    let x = x + c * (z[i] - x);
                    y[i] = beta * x + (1.0 - beta) * z[i];
                }
            });
    }

    /// The averaged weights `x` for the weights `y` the trainer holds.
    pub fn average(&self, y: &[f32], momentum: f32) -> Vec<f32> {
        if self.z.is_empty() {
            return y.to_vec();
        }
        y.iter()
            .zip(&self.z)
            .map(|(y, z)| (y - (1.0 - momentum) * z) / momentum)
            .collect()
    }
}

impl Default for Signum {
    fn default() -> Self {
        Signum::new()
    }
}

fn sign(g: f32) -> f32 {
    match g {
        g if g > 0.0 => 1.0,
        g if g < 0.0 => -1.0,
        _ => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference's update, written out with x and z held explicitly.
    fn explicit(x: &mut f64, z: &mut f64, g: f64, lr: f64, c: f64) {
        *z -= lr * g.signum() * (g != 0.0) as u8 as f64;
        *x += c * (*z - *x);
    }

    #[test]
    fn matches_the_explicit_three_sequence_form() {
        let beta = 0.95f32;
        let mut y = vec![0.5f32, -1.0, 2.0];
        let mut opt = Signum::new();
        let mut weights = AverageWeights::default();
        let mut xs: Vec<f64> = y.iter().map(|&v| v as f64).collect();
        let mut zs = xs.clone();
        for t in 0..1000 {
            // Gradients taken at y, from a quadratic with its minimum at 1.
            let g: Vec<f32> = y.iter().map(|v| v - 1.0).collect();
            let lr = if t < 5 { 0.01 * (t + 1) as f32 } else { 0.05 };
            let c = weights.next(lr);
            opt.update(
                &mut y,
                &g,
                SignumStep {
                    lr,
                    momentum: beta,
                    average_weight: c,
                },
            );
            for i in 0..3 {
                explicit(&mut xs[i], &mut zs[i], g[i] as f64, lr as f64, c as f64);
                let want = beta as f64 * xs[i] + (1.0 - beta as f64) * zs[i];
                assert!(
                    (y[i] as f64 - want).abs() < 1e-5,
                    "t {t} i {i}: {} vs {want}",
                    y[i]
                );
            }
        }
        let x = opt.average(&y, beta);
        for i in 0..3 {
            assert!((x[i] as f64 - xs[i]).abs() < 1e-4, "{} vs {}", x[i], xs[i]);
            assert!(
                (x[i] - 1.0).abs() < 0.1,
                "the average settles at the minimum: {x:?}"
            );
        }
    }

    #[test]
    fn a_constant_lr_averages_uniformly() {
        let mut w = AverageWeights::default();
        for t in 0..10 {
            let c = w.next(0.5);
            assert!((c - 1.0 / (t + 1) as f32).abs() < 1e-7);
        }
    }

    #[test]
    fn zero_gradients_leave_the_iterate_and_reset_restarts_the_average() {
        let mut y = vec![1.0f32, 2.0];
        let mut opt = Signum::new();
        let s = SignumStep {
            lr: 0.1,
            momentum: 0.9,
            average_weight: 0.5,
        };
        opt.update(&mut y, &[0.0, 1.0], s);
        assert_eq!(y[0], 1.0);
        assert!(y[1] < 2.0);
        y[1] = 7.0;
        opt.reset(&y, 1, 1);
        assert_eq!(opt.average(&y, 0.9)[1], 7.0);
    }
}
