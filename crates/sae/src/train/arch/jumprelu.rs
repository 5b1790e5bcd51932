//! JumpReLU's L0 penalty and the straight-through gradient of its thresholds
//! (Rajamanoharan et al. 2024, "Jumping Ahead").
//!
//! With f_tj = pre_tj · H(pre_tj − θ_j) and K(u) = 1[|u| < ½] the rectangle kernel of
//! bandwidth ε, the pseudo-derivatives are
//!   ∂f_tj/∂θ_j = −(θ_j/ε) K((pre_tj − θ_j)/ε)   and   ∂H/∂θ_j = −(1/ε) K((pre_tj − θ_j)/ε),
//! and neither H nor the jump passes gradient to `pre` (f does, as 1 where it fires, which
//! the reconstruction gradient already covers). So for
//!   L = L_rec + (λ/B) Σ_t Σ_j H(pre_tj − θ_j)
//! the threshold gradient sums, over the entries within ε/2 of their threshold,
//!   ∂L/∂θ_j = Σ_t K(·) · [ −(θ_j/ε) ⟨g_t, W_dec[j]⟩ − λ/(B ε) ],   g_t = ∂L_rec/∂x̂_t.

use super::{Architecture, Batch, ParamSpec, SpecKind, TrainArchitecture};
use crate::dictionary::Activation;
use crate::features::SparseFeatures;
use crate::kernels::select;
use crate::kernels::sparse::{entry_dots, ByLatent};
use crate::train::config::TrainConfig;
use crate::train::objective::LossParts;
use crate::train::trainer::{named_mut, Trainer};

/// The name of the per-latent threshold among the trainer's parameters.
const THRESHOLD: &str = "threshold";

pub(crate) struct JumpRelu;

pub(crate) const KIND: SpecKind = SpecKind {
    name: "jumprelu",
    about: "JumpReLU with an L0 penalty and learned thresholds",
    keys: &[
        "l0",
        "target_l0",
        "penalty_warmup",
        "bandwidth",
        "threshold",
    ],
    build: |_| TrainArchitecture::JumpRelu,
};

impl Architecture for JumpRelu {
    fn sparsity_coefficient(&self, cfg: &TrainConfig) -> f32 {
        cfg.l0_coefficient
    }

    fn params(&self, cfg: &TrainConfig) -> Vec<ParamSpec> {
        vec![ParamSpec {
            name: THRESHOLD,
            initial: cfg.jumprelu_init_threshold,
            shape: vec![cfg.d_sae],
        }]
    }

    fn select(&self, t: &mut Trainer, rows: usize) -> SparseFeatures {
        let theta = &t.param(THRESHOLD).value;
        select::above_threshold(&t.pre, rows, t.cfg.d_sae, Some(theta))
    }

    fn needs_error(&self) -> bool {
        true
    }

    /// The L0 penalty, and the thresholds' gradient from it and from the reconstruction.
    fn add_error_terms(
        &self,
        t: &mut Trainer,
        b: &Batch,
        f: &SparseFeatures,
        e: &[f32],
        parts: &mut LossParts,
    ) {
        let g: Vec<f32> = e.iter().map(|v| 2.0 / b.rows as f32 * v).collect();
        let (bandwidth, d) = (t.cfg.jumprelu_bandwidth, t.cfg.d_in);
        let (pre, w_dec) = (&t.pre, &t.weights.w_dec);
        let theta = named_mut(&mut t.extra, THRESHOLD);
        let term = ThresholdTerm {
            threshold: &theta.value,
            bandwidth,
            coefficient: b.penalty,
        };
        parts.l0 = term.loss_and_grad(pre, f, &g, w_dec, d, &mut theta.grad);
    }

    /// Shifts every threshold by the same amount, a fraction of their mean that grows with
    /// the log-ratio of the step's L0 to the target. The L0 penalty cannot do this job: its
    /// thresholds also rise from the reconstruction alone, so a coefficient brought to zero
    /// leaves L0 below a target above where JumpReLU settles unpenalised, and Adam moves each
    /// threshold by about the lr per step whatever the coefficient, far slower than L0 needs
    /// (BENCHMARKS.md, "Target L0"). A shift acts within the step, as BatchTopK's threshold
    /// does; the penalty, at its configured coefficient, still decides which latents keep
    /// the higher thresholds.
    fn steer_l0(&self, t: &mut Trainer, l0: f64, target: f64) -> bool {
        let Some(control) = t.l0_control.as_mut() else {
            return false;
        };
        let fraction = control.threshold_shift(l0, target);
        let theta = t.param_mut(THRESHOLD);
        let mean = theta.value.iter().map(|&v| f64::from(v)).sum::<f64>()
            / theta.value.len().max(1) as f64;
        let shift = (fraction * mean) as f32;
        theta
            .value
            .iter_mut()
            .for_each(|v| *v = (*v + shift).max(0.0));
        true
    }

    /// A negative threshold would let negative pre-activations through.
    fn after_update(&self, t: &mut Trainer) {
        let theta = t.param_mut(THRESHOLD);
        theta.value.iter_mut().for_each(|v| *v = v.max(0.0));
    }

    /// The cut becomes every latent's threshold.
    fn start_at_cut(&self, t: &mut Trainer, tau: f32) {
        let tau = tau.max(f32::MIN_POSITIVE);
        t.param_mut(THRESHOLD)
            .value
            .iter_mut()
            .for_each(|v| *v = tau);
    }

    fn inference(&self, t: &Trainer) -> Activation {
        Activation::JumpRelu {
            // As in training: a negative threshold would let negative pre-activations
            // through (an average can dip below the clamped weights).
            threshold: t
                .evaluated_param(THRESHOLD)
                .iter()
                .map(|v| v.max(0.0))
                .collect(),
        }
    }
}

/// The L0 penalty's value and its gradient on the thresholds, written into `grad`.
pub struct ThresholdTerm<'a> {
    pub threshold: &'a [f32],
    pub bandwidth: f32,
    /// λ, the L0 coefficient.
    pub coefficient: f32,
}

impl ThresholdTerm<'_> {
    /// `pre` is `[rows, d_sae]`, `g` the reconstruction gradient `[rows, d_in]`, `kept` the
    /// features that fired. Returns the penalty (λ times the mean L0).
    pub fn loss_and_grad(
        &self,
        pre: &[f32],
        kept: &SparseFeatures,
        g: &[f32],
        w_dec: &[f32],
        d: usize,
        grad: &mut [f32],
    ) -> f64 {
        let (rows, d_sae) = (kept.rows, kept.d_sae);
        let (eps, theta) = (self.bandwidth, self.threshold);
        let near = SparseFeatures::from_row_fn(rows, d_sae, |t, idx, val| {
            let row = &pre[t * d_sae..(t + 1) * d_sae];
            for (j, (&p, &th)) in row.iter().zip(theta).enumerate() {
                if ((p - th) / eps).abs() < 0.5 {
                    idx.push(j as u32);
                    val.push(1.0);
                }
            }
        });
        let dots = entry_dots(&near, g, w_dec, d);
        let step = self.coefficient / (rows as f32 * eps);
        let per_entry: Vec<f32> = dots
            .iter()
            .zip(&near.idx)
            .map(|(&dot, &j)| -(theta[j as usize] / eps) * dot - step)
            .collect();
        grad.copy_from_slice(&ByLatent::new(&near).sums(&per_entry));
        self.coefficient as f64 * kept.nnz() as f64 / rows as f64
    }
}
