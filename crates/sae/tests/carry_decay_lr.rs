//! λ's own learning rate: Adam moves each λ_j by at most about its lr per step, so a short run
//! needs a larger one for λ to reach 1; the other weights keep the main lr.

use saelab_sae::contextual::carry_train::{CarryConfig, CarryTrainer};
use saelab_sae::synthetic::{RegionConfig, RegionSource};

const D: usize = 16;
const LEN: usize = 12;

fn batch() -> Vec<f32> {
    let mut src = RegionSource::new(RegionConfig {
        d: D,
        token_features: 24,
        per_position: 2,
        region_features: 8,
        mean_run: 6.0,
        regions_active: 1.0,
        seed: 9,
    })
    .unwrap();
    (0..4).flat_map(|_| src.window(LEN).x).collect()
}

/// The largest move of λ and of b_enc over one step.
fn moves(cfg: CarryConfig) -> (f32, f32) {
    let mut t = CarryTrainer::new(cfg.clone()).unwrap();
    let b = batch();
    // The first step sets the input scale and b_dec; measure the second.
    t.step(&b, LEN).unwrap();
    let before = t.dictionary();
    t.step(&b, LEN).unwrap();
    let after = t.dictionary();
    let largest = |a: &[f32], b: &[f32]| {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max)
    };
    (
        largest(&before.decay, &after.decay),
        largest(&before.weights.b_enc, &after.weights.b_enc),
    )
}

#[test]
fn lambda_moves_by_its_own_learning_rate() {
    // λ starts mid-range so that no step is cut short at 0 or 1.
    let base = CarryConfig {
        decay_init: 0.5,
        ..CarryConfig::new(D, 48, 3)
    };
    let (lambda, b_enc) = moves(base.clone());
    assert!(lambda > 0.0 && lambda <= base.lr * 1.5, "λ moved {lambda}");
    assert!(b_enc > 0.0 && b_enc <= base.lr * 1.5, "b_enc moved {b_enc}");
    let fast = CarryConfig {
        decay_lr: Some(0.05),
        ..base.clone()
    };
    let (lambda_fast, b_enc_fast) = moves(fast);
    assert!(
        lambda_fast > 10.0 * lambda && lambda_fast <= 0.05 * 1.5,
        "λ moved {lambda_fast} at decay_lr 0.05, {lambda} at lr {}",
        base.lr
    );
    assert!(
        b_enc_fast <= base.lr * 1.5,
        "b_enc keeps the main lr: moved {b_enc_fast}"
    );

    let refused = CarryTrainer::new(CarryConfig {
        decay_lr: Some(0.0),
        ..base
    })
    .err()
    .unwrap()
    .to_string();
    assert!(refused.contains("decay_lr"), "{refused}");
}
