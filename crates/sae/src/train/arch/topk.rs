//! TopK (Gao et al. 2024): the k largest pre-activations of each token fire; AuxK (in the
//! shared objective) gives dead latents a gradient, and a firing floor (`floor.rs`) keeps
//! rare latents firing. Runs as TopK.

use super::{Architecture, SpecKind, TrainArchitecture};
use crate::dictionary::Activation;
use crate::features::SparseFeatures;
use crate::kernels::select;
use crate::train::config::LONG_RUN_STEPS;
use crate::train::floor::floor_raises;
use crate::train::trainer::Trainer;

pub(crate) struct TopK {
    pub k: usize,
}

/// The default lr of TopK: Gao et al.'s width scaling, 2e-4·(2^14/d_sae)^½, raised for runs
/// shorter than `LONG_RUN_STEPS` by (LONG_RUN_STEPS/steps)^½. Their 2e-4 suits runs of many
/// thousand steps; on budgets of a few hundred steps it learns far too little per token
/// (held-out fvu 0.37 after 48 steps of 4,096 tokens, 0.25 after 94), and the best constant
/// lr measured falls about as 1/√steps (BENCHMARKS.md, "Quality per token"): 2.5e-3 at 48
/// steps, 1.8e-3 at 94, 1.1e-3 at 238.
pub fn default_lr(d_sae: usize, total_steps: u64) -> f32 {
    let width = (2e-4 / ((d_sae.max(1) as f64) / 16384.0).sqrt()) as f32;
    let short_run = (LONG_RUN_STEPS as f64 / total_steps.max(1) as f64)
        .sqrt()
        .max(1.0);
    (width as f64 * short_run) as f32
}

pub(crate) const KIND: SpecKind = SpecKind {
    name: "topk",
    about: "the k largest activations of each token (AuxK for dead latents)",
    keys: &["k", "aux", "aux_warmup", "min_density"],
    build: |k| TrainArchitecture::TopK { k },
};

impl Architecture for TopK {
    fn k(&self) -> Option<usize> {
        Some(self.k)
    }

    fn default_lr(&self, d_sae: usize, total_steps: u64) -> f32 {
        default_lr(d_sae, total_steps)
    }

    /// The batch's features, and the floor's raises of `b_enc` for the latents under it (the
    /// step's gradient is taken at the pre-activations before them).
    fn select(&self, t: &mut Trainer, rows: usize) -> SparseFeatures {
        let features = select::top_k_rows(&t.pre, rows, t.cfg.d_sae, self.k, None);
        for (j, raise) in floor_raises(&t.pre, &features, t.cfg.min_density) {
            t.weights.b_enc[j as usize] += raise;
        }
        features
    }

    fn inference(&self, _t: &Trainer) -> Activation {
        Activation::TopK { k: self.k }
    }
}
