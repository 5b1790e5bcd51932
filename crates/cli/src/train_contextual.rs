//! `saelab train-contextual`: dictionaries that look back along the window (carry, temporal)
//! trained on whole windows of a cache, beside per-position dictionaries on the same windows.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Result;
use saelab_train::contextual::{train_contextual, ContextOutcome, ContextStart, ContextualConfig};

use crate::train::{Bars, Interrupted};

#[derive(clap::Args)]
#[command(after_help = "Dictionary specs:
  carry:k=32,width=8192[,decay_init=0.02,floor=0.01,lr=0.002,decay_lr=LR,seed=N,name=NAME]
      saelab's contextual design: each latent carries a learned share λ of its code to the
      next position; k onsets per position (what L0 counts). decay_lr: Adam's lr for λ
      (default: lr).
  temporal:width=1024[,k=32,heads=4,layers=1,bottleneck=1,tied=true,lr=0.001,gamma=10,name=NAME]
      the temporal SAE (codes predicted by attention over earlier positions plus sparse novel
      codes), saved in SAELens's layout; no k: ReLU novel codes with the norm penalty gamma.
  any `saelab train` spec (topk:k=32,width=8192,…): a per-position dictionary on the same
      windows, for comparison.
Each window's first position (the start token) is left out. summary.json holds the held-out
evaluation (fvu, L0, the context path's share, persistence), parameters, training FLOPs per
token and each dictionary's own tokens/s.")]
pub struct Args {
    /// A harvested activation cache (whole windows, packed).
    #[arg(long)]
    cache: Option<PathBuf>,
    /// The hook to train on, when the cache holds several.
    #[arg(long)]
    hook: Option<String>,
    /// A dictionary spec (see below); repeat for several, all trained on the same windows.
    #[arg(long = "sae")]
    saes: Vec<String>,
    /// The cache's last windows, kept out of training and evaluated at the end.
    #[arg(long, default_value_t = 256)]
    holdout_windows: u64,
    /// Training tokens (default: the whole cache but the held-out windows).
    #[arg(long)]
    tokens: Option<u64>,
    /// Windows per step.
    #[arg(long, default_value_t = 32)]
    batch_windows: usize,
    /// Memory of the shuffling buffer (whole windows).
    #[arg(long, default_value_t = 1024)]
    buffer_mib: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long, default_value_t = 200)]
    checkpoint_every: u64,
    #[arg(long, default_value_t = 10)]
    log_every: u64,
    /// The run folder: config.json, metrics.jsonl, checkpoints/, final/<name>/, summary.json.
    #[arg(long)]
    out: PathBuf,
    /// Continue the run in --out from its last checkpoint (its settings come from its
    /// config.json; the other flags are ignored).
    #[arg(long)]
    resume: bool,
}

pub fn run(args: Args) -> Result<()> {
    let start = match args.resume {
        true => ContextStart::Resume,
        false => {
            let Some(cache) = args.cache.clone() else {
                anyhow::bail!(
                    "--cache is required (contextual training reads whole windows of a harvest)"
                );
            };
            ContextStart::Fresh(Box::new(ContextualConfig {
                cache,
                hook: args.hook.clone(),
                holdout_windows: args.holdout_windows,
                tokens: args.tokens,
                batch_windows: args.batch_windows,
                buffer_mib: args.buffer_mib,
                seed: args.seed,
                checkpoint_every: args.checkpoint_every,
                log_every: args.log_every,
                dictionaries: args.saes.clone(),
            }))
        }
    };
    let interrupted = Arc::new(AtomicBool::new(false));
    let flag = interrupted.clone();
    let _ = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst));
    let mut bars = Bars::default();
    match train_contextual(&args.out, start, &mut bars, &interrupted)? {
        ContextOutcome::Interrupted { step } => {
            bars.finish();
            Err(Interrupted {
                step,
                out: args.out.clone(),
                command: "train-contextual",
            }
            .into())
        }
        ContextOutcome::Finished(summary) => {
            print_table(&summary);
            println!("dictionaries in {}", args.out.join("final").display());
            println!("report: {}", args.out.join("report.html").display());
            Ok(())
        }
    }
}

/// The held-out comparison, one line per dictionary.
fn print_table(summary: &serde_json::Value) {
    println!(
        "{:<16} {:>9} {:>7} {:>8} {:>7} {:>7} {:>8} {:>10} {:>12} {:>10}",
        "name",
        "kind",
        "width",
        "fvu",
        "L0",
        "ctx",
        "P(stay)",
        "params",
        "train FLOP/t",
        "tokens/s"
    );
    let empty = Vec::new();
    let dicts = summary["dictionaries"].as_array().unwrap_or(&empty);
    for d in dicts {
        let h = &d["holdout"];
        let num = |v: &serde_json::Value, digits: usize| {
            v.as_f64()
                .map_or("-".to_string(), |x| format!("{x:.digits$}"))
        };
        println!(
            "{:<16} {:>9} {:>7} {:>8} {:>7} {:>7} {:>8} {:>10} {:>12} {:>10}",
            d["name"].as_str().unwrap_or("?"),
            d["kind"].as_str().unwrap_or("?"),
            d["width"],
            num(&h["fvu"], 4),
            num(&h["l0"], 1),
            num(&h["context_share"], 3),
            num(&h["median_p_stay"], 3),
            d["parameters"],
            num(&d["train_flops_per_token"], 0),
            num(&d["tokens_per_s"], 0),
        );
    }
}
