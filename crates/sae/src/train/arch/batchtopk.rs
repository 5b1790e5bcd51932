//! BatchTopK (Bussmann et al. 2024): the k·B largest pre-activations of a batch of B tokens
//! fire, so a token may use more or fewer than k latents. The smallest value kept is tracked
//! as a running threshold, with which the trained dictionary runs as JumpReLU.

use super::{Architecture, SpecKind, TrainArchitecture};
use crate::dictionary::Activation;
use crate::features::SparseFeatures;
use crate::kernels::select;
use crate::train::config::TrainConfig;
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

/// The encoder starts as the decoder's transpose times `ENCODER_SCALE`. At full scale one
/// cut over the batch hands hundreds of latents to each of the few high-norm tokens (the
/// pre-activations grow with ‖x‖), which they reconstruct many times over: training fvu 38
/// after 9 steps and held-out fvu 2.2 after 94 on the README main job's cache. Measured
/// there (held-out fvu, 94 steps, TopK's short-run lr): scale 0.1 0.159, 0.2 and 0.5 below,
/// 0.3 0.135 (BENCHMARKS.md, "BatchTopK").
pub(super) const ENCODER_SCALE: f32 = 0.3;

pub(super) fn configure(cfg: &mut TrainConfig) {
    cfg.encoder_init_scale = Some(ENCODER_SCALE);
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

    fn configure(&self, cfg: &mut TrainConfig) {
        configure(cfg);
    }

    fn default_lr(&self, d_sae: usize, total_steps: u64) -> f32 {
        super::topk::default_lr(d_sae, total_steps)
    }

    fn select(&self, t: &mut Trainer, rows: usize) -> SparseFeatures {
        select_batch(t, rows, self.k)
    }

    fn inference(&self, t: &Trainer) -> Activation {
        inference(t)
    }
}
