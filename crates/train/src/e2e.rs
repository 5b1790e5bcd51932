//! End-to-end training: dictionaries at one hook learn from the model's KL from its clean
//! output (or its CE) with their reconstruction spliced in, instead of (or beside) the
//! reconstruction's MSE, on whole windows of a corpus read live. The same driver trains with
//! plain MSE, so that the two objectives can be compared on exactly the same windows.
//!
//! Each step runs the model once cleanly (the activations, the clean distributions, and the
//! residual stream entering the hook's block), then per dictionary a forward from that block
//! with x̂ spliced in and its backward (`saelab_eval::downstream`): about three full forwards
//! per dictionary and step, so far slower than training on cached activations. No
//! checkpoints: the runs this is for are short fine-tunes.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use saelab_data::windows::Window;
use saelab_data::{windows, Corpus, CorpusOptions, Packing, WindowConfig};
use saelab_eval::cross_entropy::{CleanDistributions, DownstreamLoss};
use saelab_eval::downstream::SplicedLoss;
use saelab_eval::evaluate::{batch_of, resid_pre, start_layer};
use saelab_eval::positions::Positions;
use saelab_model::{HookPoint, Hooks};
use saelab_sae::train::trainer::StepStats;
use saelab_sae::{Dictionary, SaeSpec, Trainer};
use serde::{Deserialize, Serialize};

use crate::write_atomic;

/// What the dictionaries learn from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum E2eLoss {
    /// The reconstruction's MSE (the usual objective, on the same windows).
    Mse,
    /// Mean KL(clean ‖ spliced) over the counted positions.
    Kl,
    /// Mean next-token cross-entropy with x̂ spliced in.
    Ce,
}

impl std::str::FromStr for E2eLoss {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "mse" => Ok(E2eLoss::Mse),
            "kl" => Ok(E2eLoss::Kl),
            "ce" => Ok(E2eLoss::Ce),
            other => bail!("--loss {other}: expected mse, kl or ce"),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct E2eConfig {
    /// The model (`saelab_model::load`'s argument; `None` for the default).
    pub model: Option<String>,
    pub corpus: String,
    pub hook: String,
    /// Window length in tokens (the start token included).
    pub ctx: usize,
    /// Windows per step.
    pub batch_windows: usize,
    /// Tokens to train on (window positions); steps = tokens / (ctx · batch_windows).
    pub tokens: u64,
    /// Windows of the corpus skipped before training (e.g. those an evaluation reads).
    #[serde(default)]
    pub skip_windows: u64,
    pub loss: E2eLoss,
    /// Weight of the MSE kept beside a KL or CE loss (0: the downstream loss alone).
    pub mse_coefficient: f32,
    /// Dictionary specs (`topk:k=32,width=4096,name=…`).
    pub dictionaries: Vec<String>,
    /// Per dictionary, a trained dictionary to start from (fine-tuning), or none.
    pub init: Vec<Option<PathBuf>>,
    pub seed: u64,
}

/// Called after every step with (step, total steps, each dictionary's stats).
pub type E2eProgress<'a> = dyn FnMut(u64, u64, &[StepStats]) + 'a;

/// Trains `cfg`'s dictionaries into `out` (`config.json`, `metrics.jsonl`, `final/<name>/`,
/// `summary.json`); returns the summary.
pub fn train_e2e(
    out: &Path,
    cfg: &E2eConfig,
    progress: &mut E2eProgress<'_>,
) -> Result<serde_json::Value> {
    if cfg.ctx < 2 || cfg.batch_windows == 0 {
        bail!("--ctx must be at least 2 and --batch-windows at least 1");
    }
    if !cfg.init.is_empty() && cfg.init.len() != cfg.dictionaries.len() {
        bail!(
            "--init: {} given for {} dictionaries (give one per --sae, in order, or none)",
            cfg.init.len(),
            cfg.dictionaries.len()
        );
    }
    if !(cfg.mse_coefficient.is_finite() && cfg.mse_coefficient >= 0.0) {
        bail!("--mse-coefficient must be finite and ≥ 0");
    }
    let steps = cfg.tokens / (cfg.ctx * cfg.batch_windows) as u64;
    if steps == 0 {
        bail!(
            "--tokens {} make no step of {} windows of {}",
            cfg.tokens,
            cfg.batch_windows,
            cfg.ctx
        );
    }
    let loaded = saelab_model::load(cfg.model.as_deref()).context("--model")?;
    let model = &loaded.model;
    let hook = HookPoint::parse(&cfg.hook, &model.cfg).context("--hook")?;
    let width = hook.width(&model.cfg);
    let corpus = Corpus::open(&cfg.corpus, &CorpusOptions::default()).context("--corpus")?;

    let mut names = Vec::new();
    let mut trainers = Vec::new();
    for (i, text) in cfg.dictionaries.iter().enumerate() {
        let spec = SaeSpec::parse(text).with_context(|| format!("--sae {text}"))?;
        let name = spec.name.clone().unwrap_or_else(|| format!("sae{i}"));
        if names.contains(&name) {
            bail!("--sae {text}: two dictionaries are named `{name}` (give name=…)");
        }
        let mut train_cfg = spec
            .train_config(width, steps, cfg.seed)
            .with_context(|| format!("--sae {text}"))?;
        train_cfg.metadata = saelab_sae::dictionary::Metadata {
            model_name: Some(loaded.name.clone()),
            hook_name: Some(cfg.hook.clone()),
            context_size: Some(cfg.ctx as u64),
            prepend_bos: Some(true),
            dataset_path: Some(corpus.name.clone()),
            exclude_special_tokens: Some(true),
            ..Default::default()
        };
        let mut trainer = Trainer::new(train_cfg).with_context(|| format!("--sae {text}"))?;
        if cfg.loss != E2eLoss::Mse {
            trainer
                .check_downstream(cfg.mse_coefficient)
                .with_context(|| format!("--sae {text}"))?;
        }
        if let Some(Some(dir)) = cfg.init.get(i) {
            let sae = saelab_sae::format::any::load_any(dir)
                .with_context(|| format!("--init {}", dir.display()))?;
            trainer
                .warm_start(&sae)
                .with_context(|| format!("--init {} for --sae {text}", dir.display()))?;
        }
        names.push(name);
        trainers.push(trainer);
    }

    crate::folder::create(out, "--out")?;
    let _lock = crate::folder::lock(out, "--out")?;
    if out.join("config.json").exists() {
        bail!("--out {} already holds a run", out.display());
    }
    write_atomic(&out.join("config.json"), &serde_json::to_vec_pretty(cfg)?)?;
    let mut log = std::fs::File::create(out.join("metrics.jsonl"))?;

    let window_cfg = WindowConfig::for_tokenizer(&loaded.tokenizer, cfg.ctx, Packing::Packed);
    let mut stream = windows(corpus.documents(), &loaded.tokenizer, window_cfg).context("--ctx")?;
    for _ in 0..cfg.skip_windows {
        if stream.next().transpose().context("--corpus")?.is_none() {
            bail!(
                "--skip-windows {}: the corpus {} has fewer windows",
                cfg.skip_windows,
                cfg.corpus
            );
        }
    }
    let start = std::time::Instant::now();
    let mut step = 0;
    let mut last = Vec::new();
    while step < steps {
        let chunk: Vec<Window> = stream
            .by_ref()
            .take(cfg.batch_windows)
            .collect::<std::result::Result<_, _>>()
            .context("--corpus")?;
        if chunk.len() < cfg.batch_windows {
            break;
        }
        let stats = e2e_step(model, hook, &chunk, cfg, &mut trainers)?;
        step += 1;
        let tokens = step * (cfg.ctx * cfg.batch_windows) as u64;
        let tokens_per_s = tokens as f64 / start.elapsed().as_secs_f64();
        for (name, s) in names.iter().zip(&stats) {
            let mut line = serde_json::to_value(s)?;
            line["name"] = name.clone().into();
            line["tokens"] = tokens.into();
            line["tokens_per_s"] = tokens_per_s.into();
            writeln!(log, "{line}")?;
        }
        progress(step, steps, &stats);
        last = stats;
    }
    if step == 0 {
        bail!("--corpus {}: not one batch of windows", cfg.corpus);
    }
    for (name, trainer) in names.iter().zip(&trainers) {
        let dir = out.join("final").join(name);
        trainer
            .dictionary()
            .save(&dir)
            .with_context(|| format!("saving {}", dir.display()))?;
    }
    let summary = serde_json::json!({
        "steps": step,
        "planned_steps": steps,
        "tokens": step * (cfg.ctx * cfg.batch_windows) as u64,
        "seconds": start.elapsed().as_secs_f64(),
        "last_step": names.iter().zip(&last).map(|(name, s)| {
            let mut v = serde_json::to_value(s).unwrap_or_default();
            v["name"] = name.clone().into();
            v
        }).collect::<Vec<_>>(),
    });
    write_atomic(
        &out.join("summary.json"),
        &serde_json::to_vec_pretty(&summary)?,
    )?;
    Ok(summary)
}

/// One step of every trainer on one batch of windows.
fn e2e_step(
    model: &saelab_model::Transformer,
    hook: HookPoint,
    chunk: &[Window],
    cfg: &E2eConfig,
    trainers: &mut [Trainer],
) -> Result<Vec<StepStats>> {
    let batch = batch_of(chunk)?;
    let positions = Positions::of(chunk, false);
    let layer = start_layer(hook);
    let downstream = cfg.loss != E2eLoss::Mse;
    let mut reads = Hooks::capture([hook]);
    if downstream {
        reads = reads.with_logits();
        if let Some(l) = layer {
            reads = reads.read(resid_pre(l));
        }
    }
    let out = model.forward(&batch, &mut reads)?;
    let value = out.get(hook).context("the hook was read")?;
    let width = *value.dims().last().unwrap_or(&0);
    let flat = value.flatten_all()?.to_vec1::<f32>()?;
    let mut rows = Vec::new();
    for (r, x) in flat.chunks(width).enumerate() {
        if positions.splice[r] {
            rows.extend_from_slice(x);
        }
    }
    if !downstream {
        return trainers
            .iter_mut()
            .map(|t| t.step(&rows).map_err(Into::into))
            .collect();
    }
    let logits = out.logits.as_ref().context("logits were asked for")?;
    let distributions = CleanDistributions::new(
        &logits.flatten_all()?.to_vec1::<f32>()?,
        model.cfg.vocab_size,
        batch.ids(),
        &positions.next_token,
    );
    let spliced = SplicedLoss {
        model,
        batch: &batch,
        hook,
        start: match layer {
            Some(l) => Some((l, out.get(resid_pre(l)).context("resid_pre was read")?)),
            None => None,
        },
        clean_value: value,
        splice: &positions.splice,
        distributions: &distributions,
        loss: match cfg.loss {
            E2eLoss::Ce => DownstreamLoss::Ce,
            _ => DownstreamLoss::Kl,
        },
    };
    let loss = |x_hat: &[f32]| spliced.loss_and_grad(x_hat).map_err(|e| e.to_string());
    trainers
        .iter_mut()
        .map(|t| {
            t.step_downstream(&rows, &loss, cfg.mse_coefficient)
                .map_err(Into::into)
        })
        .collect()
}
