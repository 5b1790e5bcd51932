//! Steering a penalised trainer's sparsity coefficient towards an asked L0, so that a user
//! names the sparsity they want instead of sweeping the coefficient for it. (JumpReLU is
//! steered through its thresholds instead: `threshold_shift`.)
//!
//! The controller works on ln(coefficient), with the error e = ln((L0 + 1) / (target + 1))
//! of a running average of the batches' L0, clamped to ±1. The coefficient is
//! exp(I + 0.2·e): a proportional part that answers at once, and an integral part I that
//! finds the coefficient where L0 balances at the target and follows it as it drifts (it
//! falls through a run as decoder norms and encoder weights grow).
//!
//! A penalised trainer is a slow plant: Adam moves biases and thresholds by about the lr per
//! step, whatever the size of the penalty, so L0 can keep moving towards the target for tens
//! of steps after the coefficient stopped changing, or move away despite it (JumpReLU's L0
//! rises in its first steps as the encoder weights grow). An integral that keeps growing
//! meanwhile overshoots by as much later. Two guards: the integral counts at most ±0.3 of
//! error per step, and it stands still while L0 is already heading for the target at a rate
//! that matters: a trend (fast minus slow average) of at least a tenth of the error, a pace
//! that would close the gap within about 170 steps.

use serde::{Deserialize, Serialize};

/// Per-step rate of the integral part (ln units per unit of error).
const INTEGRAL_GAIN: f64 = 0.05;
/// Weight of the proportional part.
const PROPORTIONAL_GAIN: f64 = 0.2;
/// Largest error counted by the proportional part: L0 e times too large or small.
const MAX_ERROR: f64 = 1.0;
/// Largest error counted by the integral part: far from the target it moves the
/// coefficient by at most 1.5% per step, slower than a trainer can answer.
const MAX_INTEGRAL_ERROR: f64 = 0.3;
/// JumpReLU's threshold shift per step, as a fraction of the mean threshold per unit of
/// error: proportional, integral, and the integral's bound (5% of the mean per step).
const SHIFT_GAIN: f64 = 0.05;
const SHIFT_INTEGRAL_GAIN: f64 = 0.002;
const MAX_SHIFT_INTEGRAL: f64 = 0.05;
/// Weights of the newest batch in the fast and slow averages of ln(L0 + 1): the fast one
/// smooths one batch's noise, their difference is the trend.
const FAST: f64 = 0.3;
const SLOW: f64 = 0.05;

/// The controller's whole state (checkpointed, so that a resumed run steers identically).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct L0Controller {
    /// ln of the integral part of the coefficient.
    log_integral: f64,
    /// Fast and slow running averages of ln(L0 + 1); `None` before the first observation.
    averages: Option<(f64, f64)>,
    /// The latest clamped error, for the proportional part.
    error: f64,
    /// JumpReLU's threshold steering (`threshold_shift`): the integral part of the shift.
    #[serde(default)]
    shift_integral: f64,
}

impl L0Controller {
    /// Starts from the configured coefficient.
    pub fn new(start: f32) -> Self {
        L0Controller {
            log_integral: (start.max(f32::MIN_POSITIVE) as f64).ln(),
            averages: None,
            error: 0.0,
            shift_integral: 0.0,
        }
    }

    /// JumpReLU's way to a target (`arch/jumprelu.rs`): the shift of every threshold for the
    /// next step, as a fraction of their mean, from the step's error e = ln((L0 + 1) /
    /// (target + 1)) clamped to ±0.3. A proportional part answers within the step (L0
    /// follows the thresholds at once); an integral part learns the thresholds' steady drift
    /// (the penalty and the reconstruction move them by about the lr per step), which a
    /// proportional shift alone leaves as a constant error: 6–8% below the targets on the
    /// default model.
    pub fn threshold_shift(&mut self, l0: f64, target: f64) -> f64 {
        let e = ((l0.max(0.0) + 1.0) / (target + 1.0)).ln();
        if !e.is_finite() {
            return 0.0;
        }
        let e = e.clamp(-MAX_INTEGRAL_ERROR, MAX_INTEGRAL_ERROR);
        self.shift_integral = (self.shift_integral + SHIFT_INTEGRAL_GAIN * e)
            .clamp(-MAX_SHIFT_INTEGRAL, MAX_SHIFT_INTEGRAL);
        SHIFT_GAIN * e + self.shift_integral
    }

    /// The coefficient for the next step.
    pub fn coefficient(&self) -> f32 {
        (self.log_integral + PROPORTIONAL_GAIN * self.error).exp() as f32
    }

    /// Takes in the L0 (mean active latents per token) of the step just taken.
    pub fn observe(&mut self, l0: f64, target: f64) {
        // A NaN L0 cannot occur (it counts latents), but must not poison the state if it did.
        if !l0.is_finite() {
            return;
        }
        let y = (l0.max(0.0) + 1.0).ln();
        let (fast, slow) = match self.averages {
            None => (y, y),
            Some((f, s)) => (f + FAST * (y - f), s + SLOW * (y - s)),
        };
        self.averages = Some((fast, slow));
        let e = fast - (target + 1.0).ln();
        self.error = e.clamp(-MAX_ERROR, MAX_ERROR);
        let trend = fast - slow;
        if e * trend < 0.0 && trend.abs() > 0.1 * e.abs() {
            return;
        }
        self.log_integral += INTEGRAL_GAIN * e.clamp(-MAX_INTEGRAL_ERROR, MAX_INTEGRAL_ERROR);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two toy trainers over a 488-step run, starting at twice the target L0, whose
    /// balance coefficient falls threefold through the run (as decoder norms grow): one
    /// where L0 relaxes towards balance / coefficient with a lag, and one that moves ln L0 by
    /// a fixed rate per step towards it (Adam's sign-like steps). Returns the largest
    /// relative error of L0 over the last 50 steps. Harsher than the trainers measured (the
    /// worst case, a sign-like plant started at 3× the balance, ends within 10.1%).
    fn worst_late_error(target: f64, start_factor: f32, plant: Plant) -> f64 {
        let steps = 488;
        let balance0 = 500.0 / target;
        let mut c = L0Controller::new(start_factor * balance0 as f32);
        let mut l0 = 2.0 * target;
        let mut worst = 0.0f64;
        for step in 0..steps {
            let balance = balance0 / 3f64.powf(step as f64 / steps as f64);
            let equilibrium = target * balance / c.coefficient() as f64;
            l0 = match plant {
                Plant::Lag(lag) => l0 + (equilibrium - l0) / lag,
                Plant::Rate(rate) => {
                    let step = (equilibrium.ln() - l0.ln()).clamp(-rate, rate);
                    (l0.ln() + step).exp()
                }
            };
            c.observe(l0, target);
            if step >= steps - 50 {
                worst = worst.max((l0 / target - 1.0).abs());
            }
        }
        worst
    }

    #[derive(Clone, Copy, Debug)]
    enum Plant {
        Lag(f64),
        Rate(f64),
    }

    #[test]
    fn reaches_and_holds_drifting_targets_from_far_starts() {
        let plants = [
            Plant::Lag(3.0),
            Plant::Lag(10.0),
            Plant::Lag(30.0),
            Plant::Rate(0.01),
            Plant::Rate(0.05),
        ];
        for target in [32.0, 64.0, 128.0] {
            for start in [1.0f32 / 3.0, 1.0, 3.0] {
                for plant in plants {
                    let worst = worst_late_error(target, start, plant);
                    assert!(
                        worst < 0.12,
                        "target {target}, start {start}× the balance, {plant:?}: {worst:.3}"
                    );
                }
            }
        }
    }

    #[test]
    fn moves_the_right_way_and_ignores_nan() {
        let mut c = L0Controller::new(1.0);
        c.observe(100.0, 10.0);
        assert!(c.coefficient() > 1.0, "too dense: the penalty grows");
        let mut c = L0Controller::new(1.0);
        c.observe(1.0, 10.0);
        assert!(c.coefficient() < 1.0, "too sparse: the penalty shrinks");
        let before = c;
        c.observe(f64::NAN, 10.0);
        assert_eq!(c, before);
    }
}
