//! Contextual trainers resume exactly: stopped after a checkpoint and restored from it, they
//! take the same steps as an uninterrupted trainer, bit for bit.

use saelab_sae::contextual::carry_train::{CarryConfig, CarryTrainer};
use saelab_sae::contextual::temporal_train::{TemporalConfig, TemporalTrainer};
use saelab_sae::synthetic::{RegionConfig, RegionSource};

const D: usize = 16;
const LEN: usize = 12;

fn batches(n: usize) -> Vec<Vec<f32>> {
    let mut src = RegionSource::new(RegionConfig {
        d: D,
        token_features: 24,
        per_position: 2,
        region_features: 8,
        mean_run: 6.0,
        regions_active: 1.0,
        seed: 4,
    })
    .unwrap();
    (0..n)
        .map(|_| (0..3).flat_map(|_| src.window(LEN).x).collect())
        .collect()
}

#[test]
fn carry_resumes_exactly() {
    let data = batches(6);
    let cfg = CarryConfig::new(D, 48, 3);
    let mut whole = CarryTrainer::new(cfg.clone()).unwrap();
    for b in &data {
        whole.step(b, LEN).unwrap();
    }
    let mut first = CarryTrainer::new(cfg.clone()).unwrap();
    for b in &data[..3] {
        first.step(b, LEN).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    first.save_checkpoint(dir.path()).unwrap();
    let mut resumed = CarryTrainer::load_checkpoint(cfg.clone(), dir.path()).unwrap();
    for b in &data[3..] {
        resumed.step(b, LEN).unwrap();
    }
    assert_eq!(resumed.steps(), 6);
    assert_eq!(resumed.dictionary(), whole.dictionary());
    // Another config is refused, naming the folder.
    let mut other = cfg;
    other.k = 4;
    let err = CarryTrainer::load_checkpoint(other, dir.path())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("another config"), "{err}");
}

#[test]
fn temporal_resumes_exactly() {
    let data = batches(5);
    let mut cfg = TemporalConfig::new(D, 32, Some(3));
    cfg.n_heads = 2;
    let mut whole = TemporalTrainer::new(cfg.clone()).unwrap();
    for b in &data {
        whole.step(b, LEN).unwrap();
    }
    let mut first = TemporalTrainer::new(cfg.clone()).unwrap();
    for b in &data[..2] {
        first.step(b, LEN).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    first.save_checkpoint(dir.path()).unwrap();
    let mut resumed = TemporalTrainer::load_checkpoint(cfg, dir.path()).unwrap();
    for b in &data[2..] {
        resumed.step(b, LEN).unwrap();
    }
    let (a, b) = (resumed.dictionary(), whole.dictionary());
    assert_eq!((a.w_dec, a.b_dec, a.scale), (b.w_dec, b.b_dec, b.scale));
    assert_eq!(a.layers[0].v_w, b.layers[0].v_w);
}
