//! `saelab bench forward`: model forward throughput, to a hook and with full logits.
//! `saelab bench cache`: how fast a harvested activation cache reads back.
//! `saelab bench features`: the feature scan against the bare forward and encode.
//! `saelab bench batches`: a cache's training batches as `.npy`, for reference trainers.
//! `saelab bench contextual`: contextual training steps against the window length.

use std::time::Instant;

use anyhow::{bail, Context, Result};
use saelab_model::hooks::HookPoint;
use saelab_model::{Batch, Hooks};

use crate::ModelArg;

#[derive(clap::Subcommand)]
pub enum Bench {
    /// Tokens per second of the model forward on random tokens.
    Forward {
        #[command(flatten)]
        model: ModelArg,
        #[arg(long, default_value_t = 32)]
        batch: usize,
        #[arg(long, default_value_t = 128)]
        ctx: usize,
        /// The hook the partial forward stops at.
        #[arg(long, default_value = "blocks.6.hook_resid_post")]
        hook: String,
        /// Timed repetitions of each forward (after one warm-up).
        #[arg(long, default_value_t = 3)]
        iters: usize,
        /// Time only the partial forward to --hook.
        #[arg(long)]
        no_full: bool,
    },
    /// Read throughput of an activation cache: shards decoded to f32 windows, and token
    /// batches drawn through the shuffling buffer.
    Cache {
        /// A folder written by `saelab harvest`.
        #[arg(long)]
        cache: std::path::PathBuf,
        /// Tokens per batch.
        #[arg(long, default_value_t = 4096)]
        batch: usize,
        /// Shuffling buffer size in MiB.
        #[arg(long, default_value_t = 512)]
        buffer_mib: usize,
        /// Skip the sha256 check of each shard.
        #[arg(long)]
        no_verify: bool,
    },
    /// The feature scan's tokens/s against the forward to the hook plus the encode alone,
    /// and the database's size per feature.
    Features(crate::bench_features::Args),
    /// Writes the token batches `saelab train` would draw from a cache to an f16 `.npy`,
    /// for running another trainer on the same batches.
    Batches(crate::bench_batches::Args),
    /// Training steps of contextual (carry, temporal) and per-position dictionaries on the
    /// same synthetic windows, at several window lengths.
    Contextual(crate::bench_contextual::Args),
}

pub fn run(b: Bench) -> Result<()> {
    match b {
        Bench::Forward {
            model,
            batch,
            ctx,
            hook,
            iters,
            no_full,
        } => forward(model, batch, ctx, hook, iters, !no_full),
        Bench::Cache {
            cache,
            batch,
            buffer_mib,
            no_verify,
        } => crate::bench_cache::run(&cache, batch, buffer_mib, !no_verify),
        Bench::Features(args) => crate::bench_features::run(args),
        Bench::Batches(args) => crate::bench_batches::run(args),
        Bench::Contextual(args) => crate::bench_contextual::run(args),
    }
}

fn forward(
    model: ModelArg,
    batch: usize,
    ctx: usize,
    hook: String,
    iters: usize,
    full_too: bool,
) -> Result<()> {
    if batch == 0 || ctx == 0 || iters == 0 {
        bail!("--batch, --ctx and --iters must be positive");
    }
    let loaded = saelab_model::load(model.model.as_deref()).context("--model")?;
    let m = &loaded.model;
    let point = HookPoint::parse(&hook, &m.cfg).context("--hook")?;
    // A fixed pseudo-random token stream: the forward's cost does not depend on the ids.
    let mut state = 0x2545F4914F6CDD1Du64;
    let ids: Vec<u32> = (0..batch * ctx)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % m.cfg.vocab_size as u64) as u32
        })
        .collect();
    let input = Batch::from_parts(ids, vec![1; batch * ctx], batch, ctx)?;
    let tokens = (batch * ctx) as f64;
    // (best, median) seconds per forward.
    let time = |make: &dyn Fn() -> Hooks<'static>| -> Result<(f64, f64)> {
        m.forward(&input, &mut make())?;
        let mut seconds = Vec::with_capacity(iters);
        for _ in 0..iters {
            let start = Instant::now();
            m.forward(&input, &mut make())?;
            seconds.push(start.elapsed().as_secs_f64());
        }
        seconds.sort_by(f64::total_cmp);
        Ok((seconds[0], seconds[iters / 2]))
    };
    let (partial, partial_median) = time(&|| Hooks::capture([point]))?;
    let (full, full_median) = match full_too {
        true => time(&Hooks::logits)?,
        false => (f64::NAN, f64::NAN),
    };
    println!(
        "{}",
        serde_json::json!({
            "model": loaded.name,
            "batch": batch,
            "ctx": ctx,
            "threads": rayon_threads(),
            "to_hook": {
                "hook": hook,
                "seconds": partial,
                "tokens_per_s": tokens / partial,
                "median_tokens_per_s": tokens / partial_median,
            },
            "full_logits": {
                "seconds": full,
                "tokens_per_s": tokens / full,
                "median_tokens_per_s": tokens / full_median,
            },
        })
    );
    Ok(())
}

fn rayon_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}
