//! Training throughput on synthetic activations (not a test: numbers depend on the machine).
//!
//!     cargo run --release -p saelab-sae --example bench_train -- [arch] [steps] [d_in] [d_sae] [k] [batch] [dead_after_tokens]
//!
//! `dead_after_tokens` (default 4 batches) is the dead-latent window; one batch makes many
//! latents count as dead, so that AuxK has work in every timed step.
//!
//! `arch` is `topk`, `batchtopk`, `relu` (standard L1), `april`, `ghost` (standard L1 with
//! ghost grads), `jumprelu`, `gated` or `all` (default). Inputs are sums of 32 random
//! directions out of 65,536 (so that a trained ReLU-L1 dictionary is sparse); the first steps
//! are warm-up and are not timed. The penalised trainers are timed once their L0 is below
//! 200, the regime they train in after the penalty's warm-up.
//!
//! Measured on the 2-core machine with nothing else running, default shape d_in 576, d_sae
//! 16,384, k 32, batch 4,096, 5 timed steps each: TopK 6,565 tokens/s (6,347 with AuxK
//! active), BatchTopK 5,213, ReLU-L1 (standard, L0 115) 5,423, April 5,141 (BENCHMARKS.md).

use std::time::Instant;

use saelab_sae::rng::SplitMix64;
use saelab_sae::{L1Variant, TrainArchitecture, TrainConfig, Trainer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: usize| -> Result<usize, Box<dyn std::error::Error>> {
        Ok(match args.get(i) {
            Some(s) => s.parse()?,
            None => default,
        })
    };
    let which = args
        .first()
        .map(String::as_str)
        .unwrap_or("all")
        .to_string();
    let steps = arg(1, 10)?;
    let (d_in, d_sae, k, batch) = (arg(2, 576)?, arg(3, 16384)?, arg(4, 32)?, arg(5, 4096)?);
    let dead_after_tokens = arg(6, 4 * batch)? as u64;
    println!(
        "d_in {d_in}, d_sae {d_sae}, k {k}, batch {batch}, {} rayon threads",
        rayon::current_num_threads()
    );
    let archs: Vec<(&str, TrainArchitecture)> = [
        ("topk", TrainArchitecture::TopK { k }),
        ("batchtopk", TrainArchitecture::BatchTopK { k }),
        ("matryoshka", TrainArchitecture::MatryoshkaBatchTopK { k }),
        (
            "relu",
            TrainArchitecture::ReluL1 {
                variant: L1Variant::Standard,
            },
        ),
        (
            "april",
            TrainArchitecture::ReluL1 {
                variant: L1Variant::April,
            },
        ),
        (
            "ghost",
            TrainArchitecture::ReluL1 {
                variant: L1Variant::Standard,
            },
        ),
        ("jumprelu", TrainArchitecture::JumpRelu),
        ("gated", TrainArchitecture::Gated),
    ]
    .into_iter()
    .filter(|(name, _)| which == "all" || which == *name)
    .collect();
    if archs.is_empty() {
        return Err(format!("unknown architecture {which:?}").into());
    }

    let data = Synthetic::new(d_in, 65_536, 32, 7);
    let pool: Vec<Vec<f32>> = (0..4).map(|i| data.batch(batch, i)).collect();
    for (name, arch) in archs {
        let mut cfg = TrainConfig::new(arch, d_in, d_sae, 1_000_000);
        let penalised = cfg.penalised();
        cfg.normalize_activations = true;
        cfg.lr_warmup_steps = 0;
        cfg.l1_warmup_steps = 0;
        cfg.l1_coefficient = 20.0;
        // JumpReLU's thresholds climb by about lr per step: a higher lr and a start near where
        // they end bring its L0 under 200 in a few dozen steps (the step's cost depends on the
        // L0, not on how it got there).
        if arch == TrainArchitecture::JumpRelu {
            cfg.lr = 1e-2;
            cfg.jumprelu_init_threshold = 0.2;
            cfg.l0_coefficient = 20.0;
        }
        cfg.ghost_grads = name == "ghost";
        cfg.dead_after_tokens = dead_after_tokens;
        let mut trainer = Trainer::new(cfg)?;
        // Warm-up (and, for the penalised trainers, until the L0 is in the sparse regime).
        let mut warm = 0;
        loop {
            let s = trainer.step(&pool[warm % pool.len()])?;
            warm += 1;
            if warm >= 3 && (!penalised || s.l0 < 200.0) {
                println!("{name}: warm-up {warm} steps, l0 {:.1}", s.l0);
                break;
            }
            if warm % 10 == 0 {
                eprintln!("{name}: warm-up step {warm}, l0 {:.1}", s.l0);
            }
            if warm > 2000 {
                return Err(format!("{name}: L0 still {:.0} after {warm} steps", s.l0).into());
            }
        }
        let t0 = Instant::now();
        let mut last = None;
        for i in 0..steps {
            last = Some(trainer.step(&pool[i % pool.len()])?);
        }
        let secs = t0.elapsed().as_secs_f64();
        let s = last.ok_or("no steps")?;
        println!(
            "{name}: {:.0} tokens/s ({:.3} s/step over {steps} steps; l0 {:.1}, fvu {:.3}, dead {:.3}, aux {:.4})",
            (steps * batch) as f64 / secs,
            secs / steps as f64,
            s.l0,
            s.fvu,
            s.dead_fraction,
            s.aux_loss
        );
    }
    Ok(())
}

/// Sparse sums of random directions, generated in parallel with one generator per row.
struct Synthetic {
    dirs: Vec<f32>,
    n: usize,
    d: usize,
    per: usize,
    seed: u64,
}

impl Synthetic {
    fn new(d: usize, n: usize, per: usize, seed: u64) -> Self {
        let mut r = SplitMix64::new(seed);
        let dirs = (0..n * d).map(|_| r.normal() / (d as f32).sqrt()).collect();
        Synthetic {
            dirs,
            n,
            d,
            per,
            seed,
        }
    }

    fn batch(&self, rows: usize, which: u64) -> Vec<f32> {
        use rayon::prelude::*;
        let base = SplitMix64::new(self.seed ^ which.wrapping_mul(0x9E37));
        let mut out = vec![0.0f32; rows * self.d];
        out.par_chunks_mut(self.d).enumerate().for_each(|(t, row)| {
            let mut r = base.fork(t as u64);
            for _ in 0..self.per {
                let i = r.below(self.n as u64) as usize;
                let m = r.uniform(0.5, 1.5);
                for (o, v) in row.iter_mut().zip(&self.dirs[i * self.d..(i + 1) * self.d]) {
                    *o += m * v;
                }
            }
        });
        out
    }
}
