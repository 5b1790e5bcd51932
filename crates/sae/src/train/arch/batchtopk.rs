//! BatchTopK (Bussmann et al. 2024): the k·B largest pre-activations of a batch of B tokens
//! fire, so a token may use more or fewer than k latents. The smallest value kept is tracked
//! as a running threshold, with which the trained dictionary runs as JumpReLU.

use super::{Architecture, SpecKind, TrainArchitecture};
use crate::dictionary::Activation;
use crate::features::SparseFeatures;
use crate::kernels::select;
use crate::train::config::LONG_RUN_STEPS;
use crate::train::trainer::Trainer;

pub(crate) struct BatchTopK {
    pub k: usize,
}

/// The batch's features, and the running threshold updated with its smallest kept value
/// (weight `batchtopk_threshold_lr` for the newest batch).
pub(super) fn select_batch(t: &mut Trainer, rows: usize, k: usize) -> SparseFeatures {
    let (feats, min_kept) = select::batch_top_k(&t.pre, rows, t.cfg.d_sae, k.saturating_mul(rows));
    if let Some(m) = min_kept {
        let beta = t.cfg.batchtopk_threshold_lr;
        t.threshold = Some(match t.threshold {
            None => m as f64,
            Some(th) => (1.0 - beta) * th + beta * m as f64,
        });
    }
    feats
}

/// JumpReLU with the running threshold for every latent.
pub(super) fn inference(t: &Trainer) -> Activation {
    Activation::JumpRelu {
        threshold: vec![t.threshold.unwrap_or(0.0) as f32; t.cfg.d_sae],
    }
}

pub(crate) const KIND: SpecKind = SpecKind {
    name: "batchtopk",
    about: "the k·B largest activations of a batch of B tokens; runs as JumpReLU",
    keys: &["k", "aux", "aux_warmup"],
    build: |k| TrainArchitecture::BatchTopK { k },
};

impl Architecture for BatchTopK {
    fn k(&self) -> Option<usize> {
        Some(self.k)
    }

    /// Gao et al.'s lr whatever the run's length: at the short-run lr of TopK the first
    /// steps put hundreds of latents on the few high-norm tokens, and the threshold, which
    /// starts from the first batch, does not come down within a short run.
    fn default_lr(&self, d_sae: usize, _total_steps: u64) -> f32 {
        super::topk::default_lr(d_sae, LONG_RUN_STEPS)
    }

    fn select(&self, t: &mut Trainer, rows: usize) -> SparseFeatures {
        select_batch(t, rows, self.k)
    }

    fn inference(&self, t: &Trainer) -> Activation {
        inference(t)
    }
}
