//! A trainer saved mid-run and restored continues bit for bit like one never stopped; a
//! checkpoint of another config is refused, naming the field.

mod common;

use common::SparseSource;
use saelab_sae::{L1Variant, Optimizer, TrainArchitecture, TrainConfig, Trainer};

fn config(arch: TrainArchitecture) -> TrainConfig {
    let mut cfg = TrainConfig::new(arch, 48, 300, 40);
    cfg.seed = 5;
    cfg.normalize_activations = true;
    cfg.dead_after_tokens = 256;
    cfg.l1_coefficient = 2.0;
    cfg.sparsity_window_steps = 7;
    cfg
}

fn batches() -> Vec<Vec<f32>> {
    let mut source = SparseSource::new(500, 48, 4, 99);
    (0..40).map(|_| source.batch(256)).collect()
}

#[test]
fn a_resumed_trainer_matches_an_uninterrupted_one_bit_for_bit() {
    let data = batches();
    let mut ghost = config(TrainArchitecture::ReluL1 {
        variant: L1Variant::Standard,
    });
    ghost.ghost_grads = true;
    ghost.l1_coefficient = 30.0;
    ghost.lr = 1e-2;
    let configs = [
        config(TrainArchitecture::TopK { k: 6 }),
        config(TrainArchitecture::BatchTopK { k: 6 }),
        config(TrainArchitecture::MatryoshkaBatchTopK { k: 6 }),
        config(TrainArchitecture::ReluL1 {
            variant: L1Variant::Standard,
        }),
        config(TrainArchitecture::ReluL1 {
            variant: L1Variant::April,
        }),
        config(TrainArchitecture::JumpRelu),
        config(TrainArchitecture::Gated),
        ghost,
    ];
    // Schedule-free sign descent keeps its iterate and averaging weights in the checkpoint;
    // the weights it evaluates (the average) differ from the ones it steps.
    let signum = |arch| {
        let mut cfg = config(arch);
        cfg.use_optimizer(Optimizer::Signum);
        cfg.lr_warmup_steps = 5;
        cfg
    };
    let mut resampled = signum(TrainArchitecture::ReluL1 {
        variant: L1Variant::Standard,
    });
    resampled.resample_every_steps = 6;
    resampled.dead_after_tokens = 1024;
    // TopK's firing floor raises biases between steps (300 latents, 256 rows: 2 each).
    let mut floored = config(TrainArchitecture::TopK { k: 6 });
    floored.min_density = 2.0 / 256.0;
    // The target_l0 controller's state is checkpointed too.
    let targeted = |arch| {
        let mut cfg = config(arch);
        cfg.target_l0 = Some(5.0);
        cfg
    };
    let configs = configs.into_iter().chain([
        targeted(TrainArchitecture::ReluL1 {
            variant: L1Variant::April,
        }),
        targeted(TrainArchitecture::JumpRelu),
        targeted(TrainArchitecture::Gated),
        signum(TrainArchitecture::TopK { k: 6 }),
        signum(TrainArchitecture::JumpRelu),
        signum(TrainArchitecture::Gated),
        resampled,
        floored,
    ]);
    for cfg in configs {
        let arch = cfg.architecture;
        let mut whole = Trainer::new(cfg.clone()).unwrap();
        let mut whole_stats = Vec::new();
        for b in &data {
            whole_stats.push(whole.step(b).unwrap());
        }
        let dir = tempfile::tempdir().unwrap();
        let mut first = Trainer::new(cfg.clone()).unwrap();
        for b in &data[..17] {
            first.step(b).unwrap();
        }
        first.save_checkpoint(dir.path()).unwrap();
        drop(first);
        let mut resumed = Trainer::load_checkpoint(cfg.clone(), dir.path()).unwrap();
        assert_eq!(resumed.steps(), 17);
        for (i, b) in data[17..].iter().enumerate() {
            let s = resumed.step(b).unwrap();
            assert_eq!(s, whole_stats[17 + i], "{arch:?} step {}", 17 + i);
        }
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let (a, b) = (whole.weights(), resumed.weights());
        assert_eq!(bits(&a.w_enc_t), bits(&b.w_enc_t), "{arch:?}");
        assert_eq!(bits(&a.w_dec), bits(&b.w_dec), "{arch:?}");
        assert_eq!(bits(&a.b_enc), bits(&b.b_enc), "{arch:?}");
        assert_eq!(bits(&a.b_dec), bits(&b.b_dec), "{arch:?}");
        assert_eq!(whole.dictionary(), resumed.dictionary(), "{arch:?}");
        if cfg.optimizer == Optimizer::Signum {
            assert_ne!(
                bits(&whole.dictionary().weights.w_dec),
                bits(&a.w_dec),
                "{arch:?}: the average is saved, not the iterate"
            );
        }
        // JumpReLU keeps its coefficient and steers its thresholds, which the bitwise
        // comparison above covers (its controller's integral is part of the checkpoint).
        if cfg.target_l0.is_some() && arch != TrainArchitecture::JumpRelu {
            let c: Vec<f32> = whole_stats[17..]
                .iter()
                .map(|s| s.sparsity_coefficient)
                .collect();
            assert!(
                c.windows(2).any(|w| w[0] != w[1]),
                "{arch:?}: the controller steered after the checkpoint"
            );
        }
        if cfg.ghost_grads {
            assert!(
                whole_stats[17..].iter().any(|s| s.aux_loss > 0.0),
                "ghost grads were active after the checkpoint"
            );
        }
    }
}

#[test]
fn a_checkpoint_of_another_config_is_refused_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = Trainer::new(config(TrainArchitecture::TopK { k: 6 })).unwrap();
    t.step(&batches()[0]).unwrap();
    t.save_checkpoint(dir.path()).unwrap();
    let err = Trainer::load_checkpoint(config(TrainArchitecture::TopK { k: 5 }), dir.path())
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("trainer.json") && err.contains("architecture"),
        "{err}"
    );
    let mut other = config(TrainArchitecture::TopK { k: 6 });
    other.lr *= 2.0;
    let err = Trainer::load_checkpoint(other, dir.path())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("`lr`") && err.contains("another run"), "{err}");
    let matryoshka = config(TrainArchitecture::MatryoshkaBatchTopK { k: 6 });
    let mut t = Trainer::new(matryoshka.clone()).unwrap();
    t.step(&batches()[0]).unwrap();
    t.save_checkpoint(dir.path()).unwrap();
    let mut other = matryoshka;
    other.matryoshka_widths = vec![30, 300];
    let err = Trainer::load_checkpoint(other, dir.path())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("`matryoshka_widths`"), "{err}");
    let err = Trainer::load_checkpoint(
        config(TrainArchitecture::TopK { k: 6 }),
        &dir.path().join("nope"),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("trainer.json"), "{err}");
}
