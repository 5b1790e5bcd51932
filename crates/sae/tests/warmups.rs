//! Each loss term beside the reconstruction has its own linear warm-up: the sparsity
//! penalty (`l1_warmup_steps`) and the auxiliary losses (`aux_warmup_steps`: AuxK, ghost
//! grads, Gated's auxiliary reconstruction). On the first step of a warm-up of N steps a
//! term weighs 1/N of itself, and the reconstruction is untouched.

mod common;

use common::SparseSource;
use saelab_sae::{L1Variant, TrainArchitecture, TrainConfig, Trainer};

fn first_step(cfg: TrainConfig) -> saelab_sae::train::trainer::StepStats {
    let mut source = SparseSource::new(256, 32, 4, 8);
    Trainer::new(cfg).unwrap().step(&source.batch(128)).unwrap()
}

fn config(arch: TrainArchitecture) -> TrainConfig {
    let mut cfg = TrainConfig::new(arch, 32, 96, 50);
    // Every latent counts as dead from the start, so AuxK and ghost grads act at once.
    cfg.dead_after_tokens = 0;
    cfg.l1_warmup_steps = 0;
    cfg.seed = 4;
    cfg
}

#[test]
fn the_auxiliary_losses_warm_up_on_their_own() {
    let mut ghost = config(TrainArchitecture::ReluL1 {
        variant: L1Variant::Standard,
    });
    ghost.ghost_grads = true;
    for cfg in [
        config(TrainArchitecture::TopK { k: 4 }),
        config(TrainArchitecture::BatchTopK { k: 4 }),
        config(TrainArchitecture::Gated),
        ghost,
    ] {
        let arch = cfg.architecture;
        let full = first_step(cfg.clone());
        let mut warm = cfg;
        warm.aux_warmup_steps = 10;
        let warming = first_step(warm);
        assert!(
            full.aux_loss > 0.0,
            "{arch:?}: no auxiliary loss to warm up"
        );
        let ratio = warming.aux_loss / full.aux_loss;
        assert!((ratio - 0.1).abs() < 1e-6, "{arch:?}: aux ratio {ratio}");
        assert_eq!(warming.recon_loss, full.recon_loss, "{arch:?}");
        assert_eq!(warming.l1_loss, full.l1_loss, "{arch:?}");
    }
}

#[test]
fn the_sparsity_penalty_warms_up_on_its_own() {
    for arch in [
        TrainArchitecture::ReluL1 {
            variant: L1Variant::Standard,
        },
        TrainArchitecture::Gated,
        TrainArchitecture::JumpRelu,
    ] {
        let full = first_step(config(arch));
        let mut warm = config(arch);
        warm.l1_warmup_steps = 4;
        let warming = first_step(warm);
        let (a, b) = (full.sparsity_coefficient, warming.sparsity_coefficient);
        assert!((b / a - 0.25).abs() < 1e-6, "{arch:?}: {a} → {b}");
        assert_eq!(warming.aux_loss, full.aux_loss, "{arch:?}");
        assert_eq!(warming.recon_loss, full.recon_loss, "{arch:?}");
    }
}
