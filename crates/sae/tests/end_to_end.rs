//! The trainer's end-to-end entry points: a warm start from a saved dictionary continues
//! from exactly its weights, and `step_downstream` refuses the architectures whose extra
//! terms are defined through the reconstruction error.

mod common;

use common::SparseSource;
use saelab_sae::{Dictionary, L1Variant, TrainArchitecture, TrainConfig, Trainer};

fn config(arch: TrainArchitecture) -> TrainConfig {
    let mut cfg = TrainConfig::new(arch, 32, 96, 50);
    cfg.seed = 5;
    cfg
}

fn max_rel_diff(a: &[f32], b: &[f32]) -> f32 {
    let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    a.iter()
        .zip(b)
        .fold(0.0f32, |m, (x, y)| m.max((x - y).abs() / scale))
}

/// Trained, saved, reloaded (weights folded to the hook's units), warm-started on inputs of
/// another scale, stepped with a negligible lr: the dictionary comes back unchanged.
#[test]
fn a_warm_start_continues_from_the_saved_weights() {
    let mut source = SparseSource::new(256, 32, 4, 8);
    let mut cfg = config(TrainArchitecture::TopK { k: 4 });
    let mut trained = Trainer::new(cfg.clone()).unwrap();
    for _ in 0..20 {
        trained.step(&source.batch(128)).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    trained.dictionary().save(dir.path()).unwrap();
    let saved = saelab_sae::format::any::load_any(dir.path()).unwrap();

    cfg.lr = 1e-12;
    cfg.lr_warmup_steps = 0;
    let mut warm = Trainer::new(cfg).unwrap();
    warm.warm_start(&saved).unwrap();
    let batch: Vec<f32> = source.batch(128).iter().map(|v| 3.0 * v).collect();
    warm.step(&batch).unwrap();
    let again = warm.dictionary();
    let (a, b) = (
        saelab_sae::format::saelens::folded_weights(&again),
        saelab_sae::format::saelens::folded_weights(&saved),
    );
    for (name, x, y) in [
        ("W_enc", &a.w_enc_t, &b.w_enc_t),
        ("b_enc", &a.b_enc, &b.b_enc),
        ("W_dec", &a.w_dec, &b.w_dec),
        ("b_dec", &a.b_dec, &b.b_dec),
    ] {
        let diff = max_rel_diff(x, y);
        assert!(diff < 1e-5, "{name} moved by {diff:.2e} relative");
    }
    // And the warm start is refused once training has begun, or at another width.
    assert!(warm.warm_start(&saved).is_err());
    let other = Trainer::new(TrainConfig::new(
        TrainArchitecture::TopK { k: 4 },
        32,
        64,
        50,
    ))
    .unwrap()
    .warm_start(&saved)
    .expect_err("a width mismatch");
    assert!(other.to_string().contains("96"), "{other}");
}

#[test]
fn step_downstream_refuses_what_it_cannot_train() {
    let mut source = SparseSource::new(256, 32, 4, 8);
    let zero =
        |x_hat: &[f32]| -> Result<(f64, Vec<f32>), String> { Ok((0.0, vec![0.0; x_hat.len()])) };
    for arch in [
        TrainArchitecture::JumpRelu,
        TrainArchitecture::Gated,
        TrainArchitecture::MatryoshkaBatchTopK { k: 4 },
    ] {
        let mut cfg = config(arch);
        if arch == (TrainArchitecture::MatryoshkaBatchTopK { k: 4 }) {
            cfg.matryoshka_widths = vec![32, 96];
        }
        let mut t = Trainer::new(cfg).unwrap();
        let err = t
            .step_downstream(&source.batch(64), &zero, 0.0)
            .expect_err("refused");
        assert!(err.to_string().contains("end-to-end"), "{arch:?}: {err}");
    }
    let mut relu = Trainer::new(config(TrainArchitecture::ReluL1 {
        variant: L1Variant::Standard,
    }))
    .unwrap();
    let stats = relu.step_downstream(&source.batch(64), &zero, 1.0).unwrap();
    assert_eq!(stats.downstream_loss, Some(0.0));
    assert!(relu
        .step_downstream(&source.batch(64), &zero, -1.0)
        .is_err());
}
