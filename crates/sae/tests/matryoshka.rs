//! Matryoshka BatchTopK against a known dictionary whose directions differ in frequency:
//! 1,024 random unit directions in R^128, of which the first 32 are frequent (two in every
//! sample) and the rest rare (six per sample out of 992). The nested losses must put the
//! frequent directions into the first prefix, which has to reconstruct on its own, while the
//! whole dictionary still finds the rare ones. Plain BatchTopK, trained alike, spreads the
//! frequent directions over arbitrary latents: its first prefix holds few of them.

mod common;

use common::{max_cosines, random_directions};
use saelab_sae::rng::SplitMix64;
use saelab_sae::{Dictionary, TrainArchitecture, TrainConfig, Trainer};

const D: usize = 128;
const N_TRUE: usize = 1024;
const FREQUENT: usize = 32;
const WIDTH: usize = 2048;
const K: usize = 8;

struct SkewedSource {
    truth: Vec<f32>,
    rng: SplitMix64,
}

impl SkewedSource {
    fn new(seed: u64) -> Self {
        SkewedSource {
            truth: random_directions(N_TRUE, D, seed),
            rng: SplitMix64::new(seed ^ 0x5EED),
        }
    }

    /// `count` distinct indices in `lo..hi`.
    fn draw(&mut self, lo: usize, hi: usize, count: usize, into: &mut Vec<usize>) {
        let start = into.len();
        while into.len() < start + count {
            let i = lo + self.rng.below((hi - lo) as u64) as usize;
            if !into[start..].contains(&i) {
                into.push(i);
            }
        }
    }

    fn batch(&mut self, rows: usize) -> Vec<f32> {
        let mut out = vec![0.0f32; rows * D];
        let mut chosen = Vec::with_capacity(K);
        for row in out.chunks_exact_mut(D) {
            chosen.clear();
            self.draw(0, FREQUENT, 2, &mut chosen);
            self.draw(FREQUENT, N_TRUE, K - 2, &mut chosen);
            for &i in &chosen {
                let m = self.rng.uniform(0.5, 1.5);
                for (o, t) in row.iter_mut().zip(&self.truth[i * D..(i + 1) * D]) {
                    *o += m * t;
                }
            }
        }
        out
    }
}

fn train(arch: TrainArchitecture, steps: u64) -> (Trainer, SkewedSource) {
    let mut cfg = TrainConfig::new(arch, D, WIDTH, steps);
    cfg.normalize_activations = false;
    cfg.lr = 2e-3;
    cfg.dead_after_tokens = 20_000;
    cfg.seed = 5;
    let mut source = SkewedSource::new(21);
    let mut trainer = Trainer::new(cfg).expect("valid config");
    for step in 0..steps {
        let stats = trainer.step(&source.batch(1024)).expect("step");
        if step % 200 == 0 || step + 1 == steps {
            eprintln!(
                "{arch:?} step {step}: fvu {:.4} l0 {:.1} dead {:.3}",
                stats.fvu, stats.l0, stats.dead_fraction
            );
        }
    }
    (trainer, source)
}

/// Fraction of `truth` rows with a decoder row among `rows` at cosine above 0.9.
fn found(truth: &[f32], w_dec: &[f32], rows: std::ops::Range<usize>) -> f64 {
    let cos = max_cosines(truth, &w_dec[rows.start * D..rows.end * D], D);
    cos.iter().filter(|c| **c > 0.9).count() as f64 / cos.len() as f64
}

/// Fraction of the variance of fresh samples left unexplained by the first `width` latents.
fn prefix_fvu(trainer: &Trainer, source: &mut SkewedSource, width: usize) -> f64 {
    let sae = trainer.dictionary();
    let x = source.batch(2048);
    let mut f = sae.encode(&x).expect("encode");
    for (j, v) in f.idx.iter().zip(f.val.iter_mut()) {
        if *j as usize >= width {
            *v = 0.0;
        }
    }
    let xhat = sae.decode(&f).expect("decode");
    let mean: Vec<f64> = (0..D)
        .map(|c| x.iter().skip(c).step_by(D).map(|&v| v as f64).sum::<f64>() / 2048.0)
        .collect();
    let (mut err, mut var) = (0.0, 0.0);
    for (t, row) in x.chunks_exact(D).enumerate() {
        for c in 0..D {
            err += (row[c] as f64 - xhat[t * D + c] as f64).powi(2);
            var += (row[c] as f64 - mean[c]).powi(2);
        }
    }
    err / var
}

#[test]
fn matryoshka_puts_frequent_directions_first_and_finds_the_rest() {
    let steps = 1000;
    let (trainer, mut source) = train(TrainArchitecture::MatryoshkaBatchTopK { k: K }, steps);
    let widths = trainer.config().matryoshka_widths.clone();
    assert_eq!(widths, [64, 192, 448, 960, WIDTH]);
    let w_dec = &trainer.weights().w_dec;
    let frequent = source.truth[..FREQUENT * D].to_vec();
    let rare = source.truth[FREQUENT * D..].to_vec();
    let first = found(&frequent, w_dec, 0..widths[0]);
    let all = found(&source.truth, w_dec, 0..WIDTH);
    let rare_all = found(&rare, w_dec, 0..WIDTH);
    let fvu_first = prefix_fvu(&trainer, &mut source, widths[0]);
    eprintln!(
        "Matryoshka: frequent in first prefix {first:.3}, all found {all:.3}, rare {rare_all:.3}, \
         first-prefix fvu {fvu_first:.3}"
    );

    let (plain, mut plain_source) = train(TrainArchitecture::BatchTopK { k: K }, steps);
    let plain_first = found(&frequent, &plain.weights().w_dec, 0..widths[0]);
    let plain_all = found(&plain_source.truth, &plain.weights().w_dec, 0..WIDTH);
    let plain_fvu_first = prefix_fvu(&plain, &mut plain_source, widths[0]);
    eprintln!(
        "BatchTopK: frequent in first prefix {plain_first:.3}, all found {plain_all:.3}, \
         first-prefix fvu {plain_fvu_first:.3}"
    );

    // Measured: 0.78 of the frequent directions in the first prefix (BatchTopK: 0.03), 0.61 of
    // all directions (BatchTopK: 0.76, as the nested losses spend latents on the frequent
    // ones), first-prefix fvu 0.74 (two of eight directions per sample: 0.75 at best) against
    // 0.97.
    assert!(
        first >= 0.65,
        "first prefix holds {first:.3} of the frequent directions"
    );
    assert!(all >= 0.5, "Matryoshka found {all:.3} of all directions");
    assert!(
        plain_first < 0.2,
        "control: BatchTopK's first latents hold {plain_first:.3} of the frequent directions"
    );
    assert!(
        fvu_first < 0.8 && fvu_first < plain_fvu_first - 0.15,
        "the first prefix alone should reconstruct far better: {fvu_first:.3} vs {plain_fvu_first:.3}"
    );
}
