//! `saelab bench contextual`: training steps of contextual and per-position dictionaries on
//! the same synthetic windows, at several window lengths with the tokens per step fixed, so
//! the cost of looking back (the carry's sequential positions, the temporal SAE's attention)
//! shows against the window length.

use std::time::Instant;

use anyhow::{bail, Result};
use saelab_sae::synthetic::{RegionConfig, RegionSource};
use saelab_train::contextual_spec::{ContextSpec, ContextTrainer};

#[derive(clap::Args)]
pub struct Args {
    /// Input width (576: the default model's residual stream).
    #[arg(long, default_value_t = 576)]
    d_in: usize,
    /// Dictionary specs as `saelab train-contextual` takes them.
    #[arg(
        long = "sae",
        default_values_t = [
            "topk:k=32,width=8192,name=topk".to_string(),
            "carry:k=32,width=8192,name=carry".to_string(),
            "temporal:k=32,width=1024,name=temporal-1k".to_string(),
        ]
    )]
    saes: Vec<String>,
    /// Window lengths (positions), comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [32usize, 128, 512])]
    lens: Vec<usize>,
    /// Positions per step (whole windows: rounded down to a multiple of each length).
    #[arg(long, default_value_t = 4096)]
    tokens: usize,
    /// Timed steps per dictionary and length (after one untimed).
    #[arg(long, default_value_t = 3)]
    steps: usize,
}

pub fn run(args: Args) -> Result<()> {
    if args.lens.iter().any(|&l| l == 0 || l > args.tokens) {
        bail!(
            "--lens: each length must be in 1..=--tokens ({})",
            args.tokens
        );
    }
    let d = args.d_in;
    let mut source = RegionSource::new(RegionConfig {
        d,
        token_features: 4 * d,
        per_position: 16,
        region_features: d,
        mean_run: 32.0,
        regions_active: 8.0,
        seed: 1,
    })
    .map_err(anyhow::Error::msg)?;
    println!(
        "{:<14} {:>6} {:>10} {:>10} {:>14} {:>14}",
        "dictionary", "len", "ms/step", "tokens/s", "FLOP/token", "attention"
    );
    for text in &args.saes {
        for &len in &args.lens {
            let windows = args.tokens / len;
            let spec = ContextSpec::parse(text, d, 1000, 0, 0)?;
            let mut trainer = ContextTrainer::new(&spec)?;
            let batches: Vec<Vec<f32>> = (0..=args.steps)
                .map(|_| (0..windows).flat_map(|_| source.window(len).x).collect())
                .collect();
            trainer.step(&batches[0], len)?;
            let t0 = Instant::now();
            for b in &batches[1..] {
                trainer.step(b, len)?;
            }
            let secs = t0.elapsed().as_secs_f64() / args.steps.max(1) as f64;
            let k = spec.k().unwrap_or(0) as f64;
            println!(
                "{:<14} {:>6} {:>10.1} {:>10.0} {:>14.3e} {:>14.3e}",
                spec.name(),
                len,
                secs * 1e3,
                (windows * len) as f64 / secs,
                spec.train_flops_per_token(k, 2.0 * k, len),
                spec.attention_flops_per_token(len),
            );
        }
    }
    Ok(())
}
