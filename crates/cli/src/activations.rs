//! `saelab activations`: summary statistics of hook activations over a text file.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use saelab_model::hooks::HookPoint;
use saelab_model::summary::ActivationStats;
use saelab_model::{Batch, Hooks, PadSide};

use crate::progress::Progress;
use crate::ModelArg;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArg,
    /// Hook point(s) to read, e.g. blocks.6.hook_resid_post (repeat the flag for several).
    #[arg(long, required = true)]
    hook: Vec<String>,
    /// A UTF-8 text file.
    #[arg(long)]
    text: PathBuf,
    /// Tokens per window.
    #[arg(long, default_value_t = 128)]
    ctx: usize,
    /// Windows per forward.
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<()> {
    if args.ctx == 0 || args.batch == 0 {
        bail!("--ctx and --batch must be positive");
    }
    let loaded = saelab_model::load(args.model.model.as_deref()).context("--model")?;
    let cfg = &loaded.model.cfg;
    if args.ctx > cfg.context_length {
        bail!(
            "--ctx {} is longer than the model's context length {}",
            args.ctx,
            cfg.context_length
        );
    }
    let points = args
        .hook
        .iter()
        .map(|h| HookPoint::parse(h, cfg).context("--hook"))
        .collect::<Result<Vec<_>>>()?;
    let bytes =
        std::fs::read(&args.text).with_context(|| format!("--text {}", args.text.display()))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "--text {}: not valid UTF-8 (first bad byte at offset {})",
            args.text.display(),
            e.utf8_error().valid_up_to()
        )
    })?;
    let ids = loaded.tokenizer.encode(&text)?;
    if ids.is_empty() {
        bail!("--text {}: the file holds no tokens", args.text.display());
    }
    let windows: Vec<Vec<u32>> = ids.chunks(args.ctx).map(<[u32]>::to_vec).collect();
    let mut stats: Vec<Option<ActivationStats>> = vec![None; points.len()];
    let mut progress = Progress::new("activations", ids.len() as u64);
    let pad = loaded.tokenizer.eos_id().unwrap_or(0);
    for rows in windows.chunks(args.batch) {
        let batch = Batch::padded(rows, PadSide::Right, pad);
        let out = loaded
            .model
            .forward(&batch, &mut Hooks::capture(points.iter().copied()))?;
        for (point, slot) in points.iter().zip(stats.iter_mut()) {
            let t = out
                .get(*point)
                .context("hook value missing from the forward")?;
            let d = t.dims()[2..].iter().product::<usize>();
            let values = t.flatten_all()?.to_vec1::<f32>()?;
            let s = slot.get_or_insert_with(|| ActivationStats::new(d));
            for (token, &m) in values.chunks(d).zip(batch.mask()) {
                if m != 0 {
                    s.add(token);
                }
            }
        }
        progress.inc(rows.iter().map(|r| r.len() as u64).sum());
    }
    progress.finish();
    let mut report = serde_json::Map::new();
    for (point, s) in points.iter().zip(&stats) {
        let summary = s
            .as_ref()
            .and_then(ActivationStats::summary)
            .context("no tokens read")?;
        if args.json {
            report.insert(point.to_string(), serde_json::to_value(&summary)?);
        } else {
            println!("{point}  ({} tokens, d = {})", summary.tokens, summary.d);
            println!("  mean norm      {:.4}", summary.mean_norm);
            for (name, q) in [
                ("per-dim mean", &summary.dim_mean),
                ("per-dim std", &summary.dim_std),
            ] {
                println!(
                    "  {name:<14} min {:.4}  p5 {:.4}  p25 {:.4}  median {:.4}  p75 {:.4}  p95 {:.4}  max {:.4}",
                    q.min, q.p05, q.p25, q.median, q.p75, q.p95, q.max
                );
            }
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(())
}
