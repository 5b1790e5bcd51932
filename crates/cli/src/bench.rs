//! `saelab bench forward`: model forward throughput, to a hook and with full logits.

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
    },
}

pub fn run(b: Bench) -> Result<()> {
    let Bench::Forward {
        model,
        batch,
        ctx,
        hook,
        iters,
    } = b;
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
    let time = |make: &dyn Fn() -> Hooks<'static>| -> Result<f64> {
        m.forward(&input, &mut make())?;
        let mut best = f64::INFINITY;
        for _ in 0..iters {
            let start = Instant::now();
            m.forward(&input, &mut make())?;
            best = best.min(start.elapsed().as_secs_f64());
        }
        Ok(best)
    };
    let partial = time(&|| Hooks::capture([point]))?;
    let full = time(&Hooks::logits)?;
    println!(
        "{}",
        serde_json::json!({
            "model": loaded.name,
            "batch": batch,
            "ctx": ctx,
            "threads": rayon_threads(),
            "to_hook": { "hook": hook, "seconds": partial, "tokens_per_s": tokens / partial },
            "full_logits": { "seconds": full, "tokens_per_s": tokens / full },
        })
    );
    Ok(())
}

fn rayon_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}
