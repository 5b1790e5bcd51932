//! `saelab train-e2e`: dictionaries trained against the model's KL (or CE) with their
//! reconstruction spliced in (end-to-end), or with plain MSE on the same windows, from
//! scratch or from a trained dictionary (`--init`).

use std::path::PathBuf;

use anyhow::Result;
use saelab_train::e2e::{train_e2e, E2eConfig, E2eLoss};

use crate::progress::Progress;
use crate::ModelArg;

#[derive(clap::Args)]
#[command(
    after_help = "Each step runs the model on --batch-windows windows of the corpus, then \
for each dictionary a forward from the hook's block with its reconstruction spliced in and the \
backward of that forward: about three full forwards per dictionary and step (a few hundred \
tokens/s on two cores at blocks.6 of the default model). There are no checkpoints: this is for \
short runs and fine-tunes. Compare objectives with `--loss mse` on the same corpus and seed: the \
windows are the same."
)]
pub struct Args {
    #[command(flatten)]
    model: ModelArg,
    /// A dictionary spec (`topk:k=32,width=4096,name=…`; TopK, BatchTopK, ReLU-L1); repeat
    /// for several, each trained on the same windows.
    #[arg(long = "sae", required = true)]
    saes: Vec<String>,
    /// Start the N-th --sae from this trained dictionary (one --init per --sae, in order).
    #[arg(long)]
    init: Vec<PathBuf>,
    /// The hook the dictionaries read and are spliced at.
    #[arg(long, default_value = "blocks.6.hook_resid_post")]
    hook: String,
    /// The corpus (a file or folder, or a default corpus by name).
    #[arg(long, default_value = "default")]
    corpus: String,
    /// Tokens (window positions) to train on.
    #[arg(long)]
    tokens: u64,
    /// Windows of the corpus to skip first (those `saelab eval --tokens` reads, to keep
    /// them held out: eval reads the corpus from its start too).
    #[arg(long, default_value_t = 0)]
    skip_windows: u64,
    /// Window length (the start token included).
    #[arg(long, default_value_t = 128)]
    ctx: usize,
    /// Windows per step.
    #[arg(long, default_value_t = 8)]
    batch_windows: usize,
    /// kl: mean KL of the spliced model's next-token distributions from the clean ones; ce:
    /// the spliced model's cross-entropy; mse: the reconstruction's (the usual objective).
    #[arg(long, default_value = "kl")]
    loss: E2eLoss,
    /// Weight of the reconstruction MSE added to a kl or ce loss.
    #[arg(long, default_value_t = 0.0)]
    mse_coefficient: f32,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// The run folder: config.json, metrics.jsonl, final/<name>/, summary.json.
    #[arg(long)]
    out: PathBuf,
}

pub fn run(args: Args) -> Result<()> {
    let init = args.init.iter().cloned().map(Some).collect();
    let cfg = E2eConfig {
        model: args.model.model,
        corpus: args.corpus,
        hook: args.hook,
        ctx: args.ctx,
        batch_windows: args.batch_windows,
        tokens: args.tokens,
        skip_windows: args.skip_windows,
        loss: args.loss,
        mse_coefficient: args.mse_coefficient,
        dictionaries: args.saes,
        init,
        seed: args.seed,
    };
    let mut bar: Option<Progress> = None;
    let summary = train_e2e(&args.out, &cfg, &mut |step, total, _| {
        bar.get_or_insert_with(|| Progress::new("train-e2e (steps)", total))
            .set_position(step);
    })?;
    if let Some(b) = bar {
        b.finish();
    }
    println!(
        "trained {} steps ({} tokens) in {:.0} s; dictionaries in {}",
        summary["steps"],
        summary["tokens"],
        summary["seconds"].as_f64().unwrap_or(0.0),
        args.out.join("final").display()
    );
    Ok(())
}
