//! Writes two small skip transcoders trained by saelab, for `reference/transcoder_peers.py`
//! to load with the peers' packages: `OUT/saelab_topk_transcoder` (sparsify's layout) and
//! `OUT/saelab_jumprelu_transcoder` (SAELens's `jumprelu_skip_transcoder`). Each is trained
//! for 30 steps on seeded random pairs (targets a sparse map of the inputs plus a linear
//! part), with inputs and targets at different scales so that both folded scales matter.
//!
//! ```sh
//! cargo run --release -p saelab-sae --example transcoder_fixture -- OUT
//! ```

use std::path::PathBuf;

use saelab_sae::rng::SplitMix64;
use saelab_sae::{Dictionary, TrainArchitecture, TrainConfig, Trainer};

const D: usize = 16;
const WIDTH: usize = 48;

fn pairs(r: &mut SplitMix64, rows: usize, map: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let x: Vec<f32> = (0..rows * D).map(|_| 2.0 * r.normal()).collect();
    let mut y = vec![0.0f32; rows * D];
    for t in 0..rows {
        for o in 0..D {
            let lin: f32 = (0..D).map(|i| map[o * D + i] * x[t * D + i]).sum();
            y[t * D + o] = 5.0 * lin.max(0.0) + 0.5 * lin;
        }
    }
    (x, y)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(std::env::args().nth(1).ok_or("give the output folder")?);
    let mut r = SplitMix64::new(11);
    let map: Vec<f32> = (0..D * D).map(|_| r.normal() / 4.0).collect();
    for (arch, name) in [
        (TrainArchitecture::TopK { k: 6 }, "saelab_topk_transcoder"),
        (
            TrainArchitecture::BatchTopK { k: 6 },
            "saelab_jumprelu_transcoder",
        ),
    ] {
        let mut cfg = TrainConfig::new(arch, D, WIDTH, 30);
        cfg.transcoder = true;
        cfg.skip_connection = true;
        cfg.lr = 1e-2;
        cfg.seed = 2;
        cfg.metadata.hook_name = Some("blocks.2.ln2.hook_normalized".into());
        cfg.metadata.hook_name_out = Some("blocks.2.hook_mlp_out".into());
        let mut trainer = Trainer::new(cfg)?;
        let mut last = None;
        for _ in 0..30 {
            let (x, y) = pairs(&mut r, 256, &map);
            last = Some(trainer.step_transcoder(&x, &y)?);
        }
        let dir = out.join(name);
        trainer.dictionary().save(&dir)?;
        let fvu = last.map(|s| s.fvu).unwrap_or(f64::NAN);
        println!("{}: trained fvu {fvu:.3}", dir.display());
    }
    Ok(())
}
