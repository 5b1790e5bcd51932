//! `saelab train`: the run of `saelab_train` (many dictionaries from one stream of
//! activations, checkpoints that resume exactly, metrics, held-out evaluation, report) from
//! flags or a TOML file, with progress bars, Ctrl-C and the summary table.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use saelab_sae::train::set::TrainerSet;
use saelab_sae::{SaeSpec, StepStats};
use saelab_train::{Observer, Outcome, RunConfig, Start};

use crate::corpus_arg::CorpusArg;
use crate::progress::Progress;

#[derive(clap::Args)]
pub struct Args {
    /// The run folder (created).
    #[arg(long)]
    out: PathBuf,
    /// Continue the run in --out from its last checkpoint, with the settings in its
    /// config.json (no other flag is accepted beside it).
    #[arg(long, conflicts_with_all = ["config", "sae"], conflicts_with_all = RUN_FLAGS)]
    resume: bool,
    /// A TOML file with the run's settings (the flags' names, and [[sae]] tables); no other
    /// run flag is accepted beside it.
    #[arg(long, conflicts_with = "sae", conflicts_with_all = RUN_FLAGS)]
    config: Option<PathBuf>,
    /// A dictionary, e.g. `topk:k=32,width=16384` or `relu:l1=5,width=4096,lr=1e-3`
    /// (kinds: topk, batchtopk, matryoshka, relu, april, jumprelu, gated; keys: name, width,
    /// k, widths (matryoshka prefixes, e.g. 512/2048), out_hook (a transcoder: predict this
    /// hook from `hook`), skip (a transcoder's linear skip connection), l1, l0,
    /// target_l0 (steer l1/l0 towards this L0), bandwidth, threshold, ghost_grads, lr, hook,
    /// dead_after_tokens, resample_every, normalize, optimizer (adam, signum), b_dec (median,
    /// mean, zeros), momentum, aux, encoder_scale, warmup, decay). Repeat for several.
    #[arg(long)]
    sae: Vec<String>,
    #[arg(long)]
    model: Option<String>,
    #[command(flatten)]
    corpus: CorpusArg,
    /// Train from a cache written by `saelab harvest` instead of running the model.
    #[arg(long)]
    cache: Option<PathBuf>,
    /// Hook point(s) to read (default: a cache's one hook, else blocks.6.hook_resid_post).
    #[arg(long)]
    hook: Vec<String>,
    /// Training tokens (default: the whole cache less the held-out windows).
    #[arg(long)]
    tokens: Option<u64>,
    #[arg(long, default_value_t = saelab_data::DEFAULT_WINDOW_LEN)]
    ctx: usize,
    /// Tokens per step.
    #[arg(long, default_value_t = 4096)]
    batch: usize,
    /// Shuffling buffer in MiB.
    #[arg(long, default_value_t = 1024)]
    buffer_mib: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Steps between checkpoints (also taken on Ctrl-C).
    #[arg(long, default_value_t = 500)]
    checkpoint_every: u64,
    /// Checkpoints kept (the newest; older ones are removed, except those holding a file
    /// named `keep`).
    #[arg(long, default_value_t = 2)]
    keep_checkpoints: u64,
    /// Steps between lines of metrics.jsonl.
    #[arg(long, default_value_t = 10)]
    log_every: u64,
    /// Keep the cache's last N windows out of training and evaluate on them at the end.
    #[arg(long, default_value_t = 0)]
    holdout_windows: u64,
    /// Also fit PCA with this many components (the linear baseline) on the training tokens.
    #[arg(long)]
    pca: Option<usize>,
    /// Also fit ICA (FastICA) with this many components on the first training tokens: saved
    /// with the PCA baseline under `baselines/` for `saelab eval`.
    #[arg(long)]
    ica: Option<usize>,
    /// Tokens between density snapshots (each latent's firing count since the previous one,
    /// b_enc and D/E projection, in `snapshots/`); 0: none. Default: 32 over the run.
    #[arg(long)]
    snapshot_every: Option<u64>,
}

/// The flags that set a run (beside `--sae`): given with `--config` or `--resume`, which
/// take the run's settings from a file, they would be ignored, so they are refused.
const RUN_FLAGS: [&str; 19] = [
    "model",
    "corpus",
    "format",
    "field",
    "delimiter",
    "cache",
    "hook",
    "tokens",
    "ctx",
    "batch",
    "buffer_mib",
    "seed",
    "checkpoint_every",
    "keep_checkpoints",
    "log_every",
    "holdout_windows",
    "pca",
    "ica",
    "snapshot_every",
];

pub fn run(args: Args) -> Result<()> {
    let start = match args.resume {
        true => Start::Resume,
        false => Start::Fresh(Box::new(from_args(&args)?)),
    };
    let interrupted = Arc::new(AtomicBool::new(false));
    let flag = interrupted.clone();
    let _ = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst));
    let mut bars = Bars::default();
    match saelab_train::train(&args.out, start, &mut bars, &interrupted)? {
        Outcome::Interrupted { step } => {
            bars.finish();
            Err(Interrupted {
                step,
                out: args.out.clone(),
                command: "train",
            }
            .into())
        }
        Outcome::Finished(run) => {
            print_summary(&run.set, &run.last_stats, run.holdout.as_ref());
            println!("dictionaries in {}", run.final_dir.display());
            println!("report: {}", run.report.display());
            Ok(())
        }
    }
}

/// Progress bars for the replay to a checkpoint and for the steps.
#[derive(Default)]
pub(crate) struct Bars {
    replay: Option<Progress>,
    train: Option<Progress>,
}

impl Bars {
    pub(crate) fn finish(&mut self) {
        if let Some(bar) = self.train.take() {
            bar.finish();
        }
    }
}

impl Observer for Bars {
    fn replayed(&mut self, done: u64, total: u64) {
        let bar = self.replay.get_or_insert_with(|| {
            Progress::new("replaying data to the checkpoint (steps)", total)
        });
        bar.inc(1);
        if done == total {
            if let Some(bar) = self.replay.take() {
                bar.finish();
            }
        }
    }

    fn started(&mut self, done: u64, total: u64) {
        let mut bar = Progress::new("train (steps)", total);
        bar.set_position(done);
        self.train = Some(bar);
    }

    fn stepped(&mut self, _step: u64, _total: u64, _stats: &[StepStats]) {
        if let Some(bar) = self.train.as_mut() {
            bar.inc(1);
        }
    }

    fn trained(&mut self) {
        self.finish();
    }
}

/// A run stopped by Ctrl-C after its checkpoint. Not a success: `main` exits with 130
/// (128 + SIGINT) so that `saelab train … && saelab eval …` stops without a `final/` folder.
#[derive(Debug)]
pub struct Interrupted {
    pub(crate) step: u64,
    pub(crate) out: PathBuf,
    /// The command that continues it (`train`, `train-contextual`).
    pub(crate) command: &'static str,
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "interrupted at step {} (checkpoint saved); continue with: saelab {} --out {} --resume",
            self.step,
            self.command,
            self.out.display()
        )
    }
}

impl std::error::Error for Interrupted {}

fn from_args(args: &Args) -> Result<RunConfig> {
    if let Some(path) = &args.config {
        return RunConfig::from_toml(path);
    }
    Ok(RunConfig {
        model: args.model.clone(),
        corpus: args.corpus.corpus.clone(),
        cache: args.cache.clone(),
        hooks: match args.hook.is_empty() {
            true => saelab_train::config::default_hooks(args.cache.as_deref(), "--hook")?,
            false => args.hook.clone(),
        },
        tokens: args.tokens,
        ctx: args.ctx,
        batch: args.batch,
        buffer_mib: args.buffer_mib,
        seed: args.seed,
        checkpoint_every: args.checkpoint_every,
        keep_checkpoints: args.keep_checkpoints,
        log_every: args.log_every,
        holdout_windows: args.holdout_windows,
        pca: args.pca,
        ica: args.ica,
        snapshot_every: args.snapshot_every,
        sae: args
            .sae
            .iter()
            .map(|s| SaeSpec::parse(s).with_context(|| format!("--sae {s}")))
            .collect::<Result<Vec<_>>>()?,
    })
}

/// The table printed at the end of a run: each dictionary's last step, then the held-out
/// evaluation.
fn print_summary(set: &TrainerSet, last: &[StepStats], holdout: Option<&serde_json::Value>) {
    println!(
        "{:<28} {:>8} {:>10} {:>8} {:>8} {:>8}",
        "dictionary", "steps", "train fvu", "l0", "dead %", "lr"
    );
    for (spec, s) in set.specs().iter().zip(last) {
        println!(
            "{:<28} {:>8} {:>10.4} {:>8.1} {:>8.2} {:>8.1e}",
            spec.name,
            s.step + 1,
            s.fvu,
            s.l0,
            100.0 * s.dead_fraction,
            s.lr
        );
    }
    let Some(h) = holdout else {
        return;
    };
    println!("held out: {} tokens", h["tokens"]);
    println!("{:<28} {:>10} {:>8} {:>8}", "", "fvu", "l0", "dead %");
    for d in h["dictionaries"].as_array().into_iter().flatten() {
        println!(
            "{:<28} {:>10.4} {:>8.1} {:>8.2}",
            d["name"].as_str().unwrap_or(""),
            d["fvu"].as_f64().unwrap_or(f64::NAN),
            d["l0"].as_f64().unwrap_or(f64::NAN),
            100.0 * d["dead_fraction"].as_f64().unwrap_or(f64::NAN)
        );
    }
    for key in ["pca", "ica"] {
        if let Some(p) = h.get(key) {
            println!(
                "{:<28} {:>10.4}",
                format!("{key} ({} components)", p["components"]),
                p["fvu"].as_f64().unwrap_or(f64::NAN)
            );
        }
    }
}
