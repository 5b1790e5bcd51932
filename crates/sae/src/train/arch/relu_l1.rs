//! ReLU with an L1 penalty, in two forms: standard (unit-norm decoder rows, Bricken et al.
//! 2023) and the April update (each latent's L1 weighted by its decoder row's norm, rows
//! free, Anthropic's April 2024 update). Ghost grads and resampling apply to both. Runs as a
//! ReLU (`standard`) dictionary.

use super::{Architecture, L1Variant, SpecKind, TrainArchitecture};
use crate::dictionary::Activation;
use crate::train::config::TrainConfig;
use crate::train::objective::L1Term;
use crate::train::trainer::Trainer;

pub(crate) struct ReluL1 {
    pub variant: L1Variant,
}

/// The spec keys of both variants.
const KEYS: &[&str] = &[
    "l1",
    "target_l0",
    "penalty_warmup",
    "ghost_grads",
    "aux_warmup",
];

pub(crate) const STANDARD: SpecKind = SpecKind {
    name: "relu",
    about: "ReLU with an L1 penalty, unit-norm decoder rows",
    keys: KEYS,
    build: |_| TrainArchitecture::ReluL1 {
        variant: L1Variant::Standard,
    },
};

pub(crate) const APRIL: SpecKind = SpecKind {
    name: "april",
    about: "ReLU with an L1 penalty weighted by decoder norms (the April update)",
    keys: KEYS,
    build: |_| TrainArchitecture::ReluL1 {
        variant: L1Variant::April,
    },
};

impl Architecture for ReluL1 {
    fn configure(&self, cfg: &mut TrainConfig) {
        if self.variant == L1Variant::April {
            // Small rows, so that the weighted L1 starts small (the update's recipe).
            cfg.decoder_init_norm = 0.1;
        }
    }

    fn unit_norm_decoder(&self) -> bool {
        self.variant == L1Variant::Standard
    }

    fn ghost_grads(&self) -> bool {
        true
    }

    fn l1(&self, penalty: f32) -> Option<L1Term> {
        Some(L1Term {
            coefficient: penalty,
            weighted_by_decoder_norm: self.variant == L1Variant::April,
        })
    }

    fn inference(&self, _t: &Trainer) -> Activation {
        Activation::Relu
    }
}
