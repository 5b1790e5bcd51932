//! `target_l0`: each penalised trainer, started from its default coefficient and from three
//! times less and more, ends with the trained dictionary's L0 on fresh data within 15% of
//! the asked L0, on activations built from a known dictionary (256 directions in R^64,
//! 4 per sample).

mod common;

use common::SparseSource;
use saelab_sae::{Dictionary, L1Variant, TrainArchitecture, TrainConfig, Trainer};

const D: usize = 64;
const WIDTH: usize = 512;
const STEPS: u64 = 400;
/// Runs this short end within 15% (the default model's 2M-token runs: BENCHMARKS.md).
const TOLERANCE: f64 = 0.15;

fn final_l0(arch: TrainArchitecture, target: f64, start: f32) -> (f64, f32) {
    let mut cfg = TrainConfig::new(arch, D, WIDTH, STEPS);
    cfg.seed = 2;
    cfg.target_l0 = Some(target);
    match arch {
        TrainArchitecture::JumpRelu => cfg.l0_coefficient = start,
        _ => cfg.l1_coefficient = start,
    }
    let mut source = SparseSource::new(256, D, 4, 7);
    let mut trainer = Trainer::new(cfg).expect("valid config");
    for _ in 0..STEPS {
        trainer.step(&source.batch(512)).expect("step");
    }
    let rows = 4096;
    let f = trainer
        .dictionary()
        .encode(&source.batch(rows))
        .expect("encode");
    let l0 = f.val.iter().filter(|v| **v != 0.0).count() as f64 / rows as f64;
    (l0, trainer.sparsity_coefficient())
}

#[test]
fn every_penalised_trainer_reaches_its_target_from_far_starts() {
    let kinds = [
        TrainArchitecture::ReluL1 {
            variant: L1Variant::Standard,
        },
        TrainArchitecture::ReluL1 {
            variant: L1Variant::April,
        },
        TrainArchitecture::JumpRelu,
        TrainArchitecture::Gated,
    ];
    let mut failures = Vec::new();
    for arch in kinds {
        let default = TrainConfig::new(arch, D, WIDTH, STEPS).sparsity_coefficient();
        // JumpReLU reaches its target by shifting its thresholds (the coefficient stays where
        // it starts), within the step, so also one below the data's own sparsity; the others
        // by steering their coefficient, a slower plant (ReLU at 2: 2.42 from one start).
        let targets = match arch {
            TrainArchitecture::JumpRelu => &[2.0, 4.0, 12.0][..],
            _ => &[4.0, 12.0][..],
        };
        for &target in targets {
            for start in [default / 3.0, default, default * 3.0] {
                let (l0, coefficient) = final_l0(arch, target, start);
                eprintln!("{arch:?} target {target} start {start}: L0 {l0:.2}, coefficient {coefficient:.4}");
                if (l0 / target - 1.0).abs() > TOLERANCE {
                    failures.push(format!("{arch:?} target {target} from {start}: L0 {l0:.2}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
