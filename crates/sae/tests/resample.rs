//! Resampling dead latents: dead latents get directions from the batch's inputs and fire
//! again on the next batch.

mod common;

use common::SparseSource;
use saelab_sae::kernels::vector::{dot, norm};
use saelab_sae::{Dictionary, L1Variant, TrainArchitecture, TrainConfig, Trainer};

fn config(resample_every: u64) -> TrainConfig {
    let arch = TrainArchitecture::ReluL1 {
        variant: L1Variant::Standard,
    };
    let mut cfg = TrainConfig::new(arch, 32, 256, 120);
    cfg.seed = 3;
    cfg.normalize_activations = true;
    cfg.l1_coefficient = 5.0; // with this lr, strong enough to kill most latents
    cfg.lr = 3e-2;
    cfg.l1_warmup_steps = 0;
    cfg.lr_warmup_steps = 0;
    cfg.dead_after_tokens = 2_000;
    cfg.resample_every_steps = resample_every;
    cfg
}

fn dead_count(t: &Trainer, after: u64) -> usize {
    t.firing_tokens_since()
        .iter()
        .filter(|&&n| n >= after)
        .count()
}

#[test]
fn dead_latents_are_resampled_from_the_batch_and_fire_again() {
    let mut source = SparseSource::new(200, 32, 3, 11);
    let batches: Vec<Vec<f32>> = (0..120).map(|_| source.batch(256)).collect();

    let mut plain = Trainer::new(config(0)).unwrap();
    for b in &batches {
        assert_eq!(plain.step(b).unwrap().resampled, 0);
    }
    let plain_dead = dead_count(&plain, 2_000);
    assert!(
        plain_dead > 20,
        "the setting kills latents: {plain_dead} dead"
    );

    let mut resampling = Trainer::new(config(30)).unwrap();
    let mut total = 0;
    for (i, b) in batches.iter().enumerate() {
        let before = resampling.weights().w_dec.clone();
        let s = resampling.step(b).unwrap();
        total += s.resampled;
        if s.resampled == 0 {
            continue;
        }
        assert_eq!((i + 1) % 30, 0, "resampling only on its schedule");
        // Resampled rows: b_enc set to exactly 0 (alive latents keep a trained bias).
        let w = resampling.weights();
        let scale = resampling.input_scale();
        let d = 32;
        let revived: Vec<usize> = (0..256)
            .filter(|&j| {
                w.w_dec[j * d..(j + 1) * d] != before[j * d..(j + 1) * d] && w.b_enc[j] == 0.0
            })
            .collect();
        assert_eq!(revived.len(), s.resampled);
        // Each is a unit vector along (x_t − b_dec) for a row t of the batch.
        for &j in &revived {
            let row = &w.w_dec[j * d..(j + 1) * d];
            assert!((norm(row) - 1.0).abs() < 1e-4);
            let best = b
                .chunks_exact(d)
                .map(|x| {
                    let v: Vec<f32> = x.iter().zip(&w.b_dec).map(|(a, c)| a * scale - c).collect();
                    dot(row, &v) / norm(&v)
                })
                .fold(f32::MIN, f32::max);
            assert!(best > 0.9999, "row {j}: best cosine {best}");
        }
        // The resampled latents fire on the next batch.
        if let Some(next) = batches.get(i + 1) {
            let features = resampling.dictionary().encode(next).unwrap();
            let mut fired = vec![false; 256];
            for (&j, &v) in features.idx.iter().zip(&features.val) {
                fired[j as usize] |= v != 0.0;
            }
            let firing = revived.iter().filter(|&&j| fired[j]).count();
            assert!(
                2 * firing >= revived.len(),
                "{firing} of {} resampled latents fire on the next batch",
                revived.len()
            );
        }
    }
    assert!(
        total > plain_dead / 2,
        "{total} resampled, {plain_dead} dead without"
    );
}

#[test]
fn the_control_set_is_never_resampled() {
    let mut source = SparseSource::new(200, 32, 3, 11);
    let batches: Vec<Vec<f32>> = (0..120).map(|_| source.batch(256)).collect();
    let mut cfg = config(30);
    cfg.control_fraction = 0.25;
    let mut t = Trainer::new(cfg).unwrap();
    let control = t.control_latents().to_vec();
    assert_eq!(control.iter().filter(|&&c| c).count(), 64);
    let (mut resampled, mut dead_control_left) = (0, 0);
    for b in &batches {
        let before = t.weights().w_dec.clone();
        let s = t.step(b).unwrap();
        let w = t.weights();
        for (j, &c) in control.iter().enumerate() {
            let reset =
                w.b_enc[j] == 0.0 && w.w_dec[j * 32..(j + 1) * 32] != before[j * 32..(j + 1) * 32];
            assert!(
                !(c && s.resampled > 0 && reset),
                "control latent {j} was resampled"
            );
        }
        if s.resampled == 0 {
            continue;
        }
        resampled += s.resampled;
        // Right after resampling, every dead latent outside the control set was revived and
        // every dead one inside it was left dead.
        let dead: Vec<usize> = (0..256)
            .filter(|&j| t.firing_tokens_since()[j] >= 2_000)
            .collect();
        assert!(dead.iter().all(|&j| control[j]), "{dead:?}");
        dead_control_left = dead_control_left.max(dead.len());
    }
    assert!(resampled > 0, "the others were resampled");
    assert!(
        dead_control_left > 0,
        "some control latents died and were left dead"
    );
}
