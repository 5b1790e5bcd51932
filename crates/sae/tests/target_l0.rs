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
    // Only JumpReLU's thresholds answer its L0 penalty, and Adam moves each by about the lr
    // per step whatever the coefficient: it gets a larger lr and a longer run.
    let steps = match arch {
        TrainArchitecture::JumpRelu => 2 * STEPS,
        _ => STEPS,
    };
    let mut cfg = TrainConfig::new(arch, D, WIDTH, steps);
    cfg.seed = 2;
    cfg.target_l0 = Some(target);
    match arch {
        TrainArchitecture::JumpRelu => {
            cfg.l0_coefficient = start;
            cfg.lr = 3e-3;
        }
        _ => cfg.l1_coefficient = start,
    }
    let mut source = SparseSource::new(256, D, 4, 7);
    let mut trainer = Trainer::new(cfg).expect("valid config");
    for _ in 0..steps {
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
        // A penalty can only make a dictionary sparser than it would be without one: JumpReLU
        // unpenalised settles near L0 6 on these 4-sparse samples, so its targets are lower.
        // Its L0 first rises far above any start (the encoder weights grow faster than the
        // thresholds can follow) and then falls by a few percent per step at most, so a
        // target well below the data's own sparsity (2: L0 2.6 after 800 steps) is not
        // reached within a short run.
        let targets = match arch {
            TrainArchitecture::JumpRelu => [3.0, 4.0],
            _ => [4.0, 12.0],
        };
        for target in targets {
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
