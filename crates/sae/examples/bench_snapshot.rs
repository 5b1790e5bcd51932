//! What a density snapshot costs the training loop (not a test: numbers depend on the
//! machine): the time of `Trainer::take_snapshot` (the part the loop waits for; the file is
//! written on another thread) against the time of a TopK step, at the default shape.
//!
//!     cargo run --release -p saelab-sae --example bench_snapshot -- [snapshots] [steps]

use std::time::Instant;

use saelab_sae::rng::SplitMix64;
use saelab_sae::{TrainArchitecture, TrainConfig, Trainer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let (snapshots, steps) = (
        args.first().copied().unwrap_or(20),
        args.get(1).copied().unwrap_or(5),
    );
    let (d_in, d_sae, batch) = (576, 16384, 4096);
    let cfg = TrainConfig::new(TrainArchitecture::TopK { k: 32 }, d_in, d_sae, 1000);
    let mut trainer = Trainer::new(cfg)?;
    let mut rng = SplitMix64::new(7);
    let x: Vec<f32> = (0..batch * d_in).map(|_| rng.normal()).collect();
    trainer.step(&x)?; // warm-up
    let start = Instant::now();
    for _ in 0..steps {
        trainer.step(&x)?;
    }
    let step = start.elapsed().as_secs_f64() / steps as f64;
    let start = Instant::now();
    for _ in 0..snapshots {
        std::hint::black_box(trainer.take_snapshot());
    }
    let snapshot = start.elapsed().as_secs_f64() / snapshots as f64;
    println!(
        "step {:.1} ms, snapshot {:.2} ms: one snapshot every 32 steps costs {:.3}% of the \
         loop's time, one every step {:.2}%",
        step * 1e3,
        snapshot * 1e3,
        100.0 * snapshot / (32.0 * step),
        100.0 * snapshot / step
    );
    Ok(())
}
