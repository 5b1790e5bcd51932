//! Same seed, same data: bit-identical weights, for every trainer (all reductions run in a
//! fixed order, whatever rayon's schedule).

mod common;

use common::SparseSource;
use saelab_sae::{L1Variant, TrainArchitecture, TrainConfig, Trainer};

fn run(arch: TrainArchitecture, seed: u64) -> Trainer {
    let mut cfg = TrainConfig::new(arch, 48, 300, 40);
    cfg.seed = seed;
    cfg.normalize_activations = true;
    cfg.dead_after_tokens = 256; // AuxK active in most steps
    cfg.l1_coefficient = 2.0;
    let mut source = SparseSource::new(500, 48, 4, 99);
    let mut t = Trainer::new(cfg).expect("config");
    let mut saw_dense = false;
    for _ in 0..40 {
        let s = t.step(&source.batch(256)).expect("step");
        saw_dense |= s.dense_path;
    }
    if matches!(
        arch,
        TrainArchitecture::ReluL1 { .. } | TrainArchitecture::JumpRelu
    ) {
        assert!(saw_dense, "the dense path ran too");
    }
    t
}

#[test]
fn same_seed_gives_bit_identical_weights() {
    for arch in [
        TrainArchitecture::TopK { k: 6 },
        TrainArchitecture::BatchTopK { k: 6 },
        TrainArchitecture::MatryoshkaBatchTopK { k: 6 },
        TrainArchitecture::ReluL1 {
            variant: L1Variant::Standard,
        },
        TrainArchitecture::ReluL1 {
            variant: L1Variant::April,
        },
        TrainArchitecture::JumpRelu,
        TrainArchitecture::Gated,
    ] {
        let (a, b) = (run(arch, 7), run(arch, 7));
        let (wa, wb) = (a.weights(), b.weights());
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&wa.w_enc_t), bits(&wb.w_enc_t), "{arch:?} W_enc");
        assert_eq!(bits(&wa.b_enc), bits(&wb.b_enc), "{arch:?} b_enc");
        assert_eq!(bits(&wa.w_dec), bits(&wb.w_dec), "{arch:?} W_dec");
        assert_eq!(bits(&wa.b_dec), bits(&wb.b_dec), "{arch:?} b_dec");
        assert_eq!(a.dictionary(), b.dictionary(), "{arch:?} dictionary");
        let c = run(arch, 8);
        assert_ne!(
            c.weights().w_dec,
            wa.w_dec,
            "{arch:?}: another seed, other weights"
        );
    }
}
