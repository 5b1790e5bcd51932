//! The synthetic benchmark of contextual dictionaries (region features that stay on for a run
//! of positions, token features drawn afresh at each) with a dictionary that encodes each
//! position alone: TopK finds both kinds and pays for every active region feature at every
//! position, the persistence metric tells the kinds apart on what it learned, and it shows
//! the region features fragmented: with k slots per position and a varying number of regions
//! on, TopK drops region latents in the middle of their runs (P(stay) far below the truth's).
//! This is the baseline a dictionary that looks back must beat (lower L0 or lower fvu at equal
//! L0, region latents that stay on).

use saelab_eval::persistence::persistence;
use saelab_sae::synthetic::{RegionConfig, RegionSource};
use saelab_sae::{Dictionary, TrainArchitecture, TrainConfig, Trainer};

const D: usize = 64;
const LEN: usize = 64;
const WINDOWS: usize = 16;

/// For each true row, the learned decoder row of largest cosine: (index, cosine).
fn best_match(truth: &[f32], w_dec: &[f32]) -> Vec<(usize, f32)> {
    let norms: Vec<f32> = w_dec
        .chunks(D)
        .map(|r| r.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12))
        .collect();
    truth
        .chunks(D)
        .map(|t| {
            w_dec
                .chunks(D)
                .zip(&norms)
                .map(|(r, n)| r.iter().zip(t).map(|(a, b)| a * b).sum::<f32>() / n)
                .enumerate()
                .fold(
                    (0, f32::MIN),
                    |best, (j, c)| if c > best.1 { (j, c) } else { best },
                )
        })
        .collect()
}

#[test]
fn topk_learns_both_kinds_and_persistence_tells_them_apart() {
    let mut source = RegionSource::new(RegionConfig {
        d: D,
        token_features: 256,
        per_position: 3,
        region_features: 64,
        mean_run: 32.0,
        regions_active: 2.0,
        seed: 21,
    })
    .unwrap();
    let k = 5; // 3 token features + 2 region features on average
    let steps = 600;
    let mut cfg = TrainConfig::new(TrainArchitecture::TopK { k }, D, 512, steps);
    cfg.lr = 2e-3;
    cfg.seed = 2;
    let mut trainer = Trainer::new(cfg).unwrap();
    for _ in 0..steps {
        let x: Vec<f32> = (0..WINDOWS).flat_map(|_| source.window(LEN).x).collect();
        trainer.step(&x).unwrap();
    }
    let sae = trainer.dictionary();
    let w_dec = &sae.weights.w_dec;
    let tokens = best_match(&source.token_truth, w_dec);
    let regions = best_match(&source.region_truth, w_dec);
    let share = |m: &[(usize, f32)]| m.iter().filter(|p| p.1 > 0.9).count() as f64 / m.len() as f64;
    let (token_rec, region_rec) = (share(&tokens), share(&regions));

    // Persistence of the matched latents on fresh windows.
    let x: Vec<f32> = (0..64).flat_map(|_| source.window(LEN).x).collect();
    let codes = sae.encode(&x).unwrap();
    let p = persistence(&codes, LEN);
    let median_stay = |m: &[(usize, f32)]| {
        let mut v: Vec<f64> = m
            .iter()
            .filter(|q| q.1 > 0.9)
            .filter_map(|q| p[q.0].p_stay())
            .collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (token_stay, region_stay) = (median_stay(&tokens), median_stay(&regions));
    let fvu = {
        let recon = sae.decode(&codes).unwrap();
        let mean: Vec<f64> = (0..D)
            .map(|c| {
                x.iter().skip(c).step_by(D).map(|&v| v as f64).sum::<f64>() / (x.len() / D) as f64
            })
            .collect();
        let sse: f64 = x
            .iter()
            .zip(&recon)
            .map(|(a, b)| ((a - b) as f64).powi(2))
            .sum();
        let tv: f64 = x
            .iter()
            .enumerate()
            .map(|(i, &a)| (a as f64 - mean[i % D]).powi(2))
            .sum();
        sse / tv
    };
    eprintln!(
        "TopK k={k}: fvu {fvu:.4}, recovered token {token_rec:.3} region {region_rec:.3}, \
         median P(stay) token {token_stay:.3} region {region_stay:.3}"
    );
    assert!(token_rec >= 0.9, "token features recovered {token_rec}");
    assert!(region_rec >= 0.9, "region features recovered {region_rec}");
    // True persistence: 1 − 1/32 ≈ 0.97 for region features, the density 3/256 for token
    // ones. The learned region latents persist far more than token latents, and far less
    // than the truth.
    assert!(token_stay < 0.1, "token latents' P(stay) {token_stay}");
    assert!(region_stay > 0.5, "region latents' P(stay) {region_stay}");
    assert!(
        region_stay < 0.85,
        "region latents' P(stay) {region_stay}: not fragmented"
    );
}
