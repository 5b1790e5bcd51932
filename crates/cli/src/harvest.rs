//! `saelab harvest`: activations of one or more hooks over a corpus, written to a disk cache
//! of safetensors shards with a manifest. Rerunning the same command resumes a killed run.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use saelab_data::cache::{harvest, harvest_documents, Harvest, HarvestSettings, HarvestSpec};

use crate::corpus_arg::CorpusArg;
use crate::progress::Progress;
use crate::ModelArg;
use saelab_train::folder as run_folder;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArg,
    #[command(flatten)]
    corpus: CorpusArg,
    /// Hook point(s) to cache, e.g. blocks.6.hook_resid_post (repeat the flag for several;
    /// one forward fills them all).
    #[arg(long, required = true)]
    hook: Vec<String>,
    /// The output folder (created; rerun the same command to resume a killed harvest).
    #[arg(long)]
    out: PathBuf,
    /// Tokens to harvest (whole windows, start tokens included); default: the whole corpus.
    #[arg(long)]
    tokens: Option<u64>,
    /// Tokens per window.
    #[arg(long, default_value_t = saelab_data::DEFAULT_WINDOW_LEN)]
    ctx: usize,
    /// Documents packed across windows, or one per window padded.
    #[arg(long, default_value = "packed", value_parser = ["packed", "padded"])]
    packing: String,
    /// Number format on disk.
    #[arg(long, default_value = "f16", value_parser = ["f32", "f16", "bf16"])]
    dtype: String,
    /// Windows per model forward.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Tokens per shard (rounded to whole forwards).
    #[arg(long, default_value_t = 32_768)]
    shard_tokens: usize,
    /// Shuffle the documents with this seed before cutting windows (the whole corpus's
    /// documents are held in memory to do it).
    #[arg(long)]
    shuffle: Option<u64>,
    /// Print the manifest summary as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<()> {
    if args.ctx == 0 || args.batch == 0 || args.shard_tokens == 0 {
        bail!("--ctx, --batch and --shard-tokens must be positive");
    }
    if args.tokens == Some(0) {
        bail!("--tokens must be positive");
    }
    saelab_data::activations::check_distinct_hooks(&args.hook).context("--hook")?;
    run_folder::create(&args.out, "--out")?;
    // Held until the harvest returns: a second harvest into this folder is refused.
    let _lock = run_folder::lock(&args.out, "--out")?;
    let corpus = args.corpus.open()?;
    let loaded = Arc::new(saelab_model::load(args.model.model.as_deref()).context("--model")?);
    let settings = HarvestSettings {
        tokens: args.tokens,
        ctx: args.ctx,
        packing: args.packing.parse()?,
        dtype: args.dtype.parse()?,
        batch: args.batch,
        shard_tokens: args.shard_tokens,
        shuffle: args.shuffle,
    };
    let spec =
        HarvestSpec::for_model(&loaded, &corpus.name, &args.hook, &settings).context("--hook")?;
    let max_windows = spec.max_windows;
    let job = Harvest::new(&loaded, spec, &args.out).context("harvest settings")?;
    let mut progress = Progress::new("harvest (windows)", max_windows.unwrap_or(0));
    let mut first: Option<u64> = None;
    let start = Instant::now();
    let documents = harvest_documents(&corpus, args.shuffle);
    let manifest = harvest(loaded.clone(), documents, &job, &mut |windows| {
        if first.is_none() && windows > 0 {
            eprintln!(
                "resuming: {windows} windows already in {}",
                args.out.display()
            );
        }
        first.get_or_insert(windows);
        progress.set_position(windows);
        true
    })
    .with_context(|| format!("harvesting into {}", args.out.display()))?;
    progress.finish();
    let seconds = start.elapsed().as_secs_f64();
    let new_windows = manifest.windows() - first.unwrap_or(0);
    let summary = serde_json::json!({
        "out": args.out,
        "windows": manifest.windows(),
        "tokens": manifest.tokens(),
        "shards": manifest.shards.len(),
        "bytes": manifest.bytes(),
        "bytes_per_token": manifest.bytes() as f64 / (manifest.windows() * args.ctx as u64) as f64,
        "new_tokens_per_s": (new_windows * args.ctx as u64) as f64 / seconds,
        "seconds": seconds,
        "stats": manifest.stats.iter().map(|(hook, s)| (hook.clone(), serde_json::json!({
            "mean_sq_norm": s.mean_sq_norm,
            "total_var": s.total_var,
            "norm_scale": s.norm_scale,
        }))).collect::<serde_json::Map<_, _>>(),
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
        return Ok(());
    }
    println!(
        "{}: {} windows ({} training tokens) in {} shards, {:.1} MB ({:.0} bytes per token)",
        args.out.display(),
        manifest.windows(),
        manifest.tokens(),
        manifest.shards.len(),
        manifest.bytes() as f64 / 1e6,
        summary["bytes_per_token"].as_f64().unwrap_or(0.0)
    );
    println!(
        "{:.0} tokens/s over {:.1} s",
        summary["new_tokens_per_s"].as_f64().unwrap_or(0.0),
        seconds
    );
    for (hook, s) in &manifest.stats {
        println!(
            "{hook}: E|x|^2 {:.3}, total variance {:.3}, scale to E|x|^2 = d: {:.5}",
            s.mean_sq_norm, s.total_var, s.norm_scale
        );
    }
    Ok(())
}
