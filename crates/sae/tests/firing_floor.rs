//! TopK's firing floor (`min_density`) on data where every latent has something to learn
//! (4,096 true directions, 1,024 latents), with a few tokens of six times the usual norm as
//! in a real model's residual stream, and a large lr: some latents starve. With the floor,
//! fewer latents stay silent over fresh tokens (62 → 0 when written), at most 5% worse in
//! fvu (0.627 → 0.651).

mod common;

use common::SparseSource;
use saelab_sae::{Dictionary, TrainArchitecture, TrainConfig, Trainer};

const D: usize = 64;
const LATENTS: usize = 1024;
const BATCH: usize = 512;

/// (latents silent over 8 fresh batches, fvu on them) after training with `min_density`.
fn silent_after_training(min_density: f64) -> (usize, f64) {
    let mut source = HighNormTokens(SparseSource::new(4096, D, 8, 21), 0);
    let mut cfg = TrainConfig::new(TrainArchitecture::TopK { k: 8 }, D, LATENTS, 150);
    cfg.lr = 1e-2;
    cfg.seed = 5;
    cfg.min_density = min_density;
    let mut trainer = Trainer::new(cfg).expect("valid config");
    for _ in 0..150 {
        trainer.step(&source.batch(BATCH)).expect("step");
    }
    let sae = trainer.dictionary();
    let mut fired = vec![false; LATENTS];
    let (mut err, mut var) = (0.0f64, 0.0f64);
    for _ in 0..8 {
        let x = source.batch(BATCH);
        let out = sae.forward(&x).expect("forward");
        out.features
            .idx
            .iter()
            .for_each(|&j| fired[j as usize] = true);
        let mean: Vec<f64> = (0..D)
            .map(|i| x.chunks_exact(D).map(|r| r[i] as f64).sum::<f64>() / BATCH as f64)
            .collect();
        for (row, rec) in x.chunks_exact(D).zip(out.reconstruction.chunks_exact(D)) {
            for i in 0..D {
                err += (row[i] as f64 - rec[i] as f64).powi(2);
                var += (row[i] as f64 - mean[i]).powi(2);
            }
        }
    }
    (fired.iter().filter(|f| !**f).count(), err / var)
}

/// Every 50th token six times larger.
struct HighNormTokens(SparseSource, usize);

impl HighNormTokens {
    fn batch(&mut self, rows: usize) -> Vec<f32> {
        let mut x = self.0.batch(rows);
        for row in x.chunks_exact_mut(D) {
            self.1 += 1;
            if self.1.is_multiple_of(50) {
                row.iter_mut().for_each(|v| *v *= 6.0);
            }
        }
        x
    }
}

#[test]
fn the_floor_keeps_starved_latents_firing() {
    let (silent_without, fvu_without) = silent_after_training(0.0);
    let (silent_with, fvu_with) = silent_after_training(2.0 / BATCH as f64);
    eprintln!("silent {silent_without} → {silent_with}, fvu {fvu_without:.4} → {fvu_with:.4}");
    assert!(
        silent_without >= 10,
        "the setting should starve latents: {silent_without}"
    );
    assert!(
        silent_with * 4 <= silent_without,
        "silent latents {silent_without} → {silent_with}"
    );
    assert!(
        fvu_with <= fvu_without * 1.05,
        "fvu {fvu_without} → {fvu_with}"
    );
}
