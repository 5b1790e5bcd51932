//! Contextual training runs: dictionaries that look back along the window (carry, temporal)
//! trained on whole windows of a harvested cache, beside any per-position dictionary
//! (`topk:…`) trained on exactly the same windows, so that they compare at equal tokens.
//!
//! A run folder holds `config.json`, `metrics.jsonl` (one line per dictionary every
//! `log_every` steps, with each dictionary's own tokens/s), `checkpoints/step_N/<name>/`
//! (exact resume: the batches are replayed from the cache), `final/<name>/` and
//! `summary.json` (the held-out evaluation: fvu, L0 of what each position pays for, the
//! context path's share, persistence; parameters and training FLOPs per token) and
//! `report.html` (the training curves).
//!
//! Windows are drawn whole from the shuffling buffer; their first position (the start token,
//! whose activation is an outlier many times the norm of the others) is left out of training
//! and evaluation, as per-position training leaves special positions out.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use saelab_data::activations::{ActivationBatch, ActivationBuffer, BatchShape, BufferConfig};
use saelab_eval::persistence::{persistence, Persistence};
use saelab_sae::contextual::window::WindowDictionary;
use saelab_sae::Metadata;
use serde::{Deserialize, Serialize};

use crate::config::RunConfig;
use crate::contextual_spec::{ContextSpec, ContextTrainer};
use crate::files::{
    latest_checkpoint, prune_checkpoints, read_config, trim_metrics, write_checkpoint,
};
use crate::source::Source;
use crate::{folder, write_atomic, Observer};

pub use crate::files::CONFIG;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContextualConfig {
    pub cache: PathBuf,
    /// The hook to train on (needed when the cache holds several).
    #[serde(default)]
    pub hook: Option<String>,
    /// The cache's last windows, kept out of training and evaluated at the end.
    pub holdout_windows: u64,
    /// Training tokens (window positions, start tokens included); default: all.
    #[serde(default)]
    pub tokens: Option<u64>,
    /// Windows per step.
    pub batch_windows: usize,
    pub buffer_mib: usize,
    pub seed: u64,
    pub checkpoint_every: u64,
    pub log_every: u64,
    /// The `--sae` specs as given.
    pub dictionaries: Vec<String>,
}

/// `config.json`: the settings and the dictionaries they made.
#[derive(Serialize, Deserialize)]
struct RunFile {
    run: ContextualConfig,
    dictionaries: Vec<ContextSpec>,
    total_steps: u64,
}

/// How a contextual run starts.
pub enum ContextStart {
    Fresh(Box<ContextualConfig>),
    /// From the folder's last checkpoint, with the settings in its `config.json`.
    Resume,
}

/// How it ended: the summary, or interrupted after a checkpoint at `step`.
pub enum ContextOutcome {
    Finished(Box<serde_json::Value>),
    Interrupted { step: u64 },
}

/// Trains into `out` until the end of the run or until `interrupt` is set (then a
/// checkpoint is taken). Progress goes to `observer` (`started`, `replayed`, `trained`).
pub fn train_contextual(
    out: &Path,
    start: ContextStart,
    observer: &mut dyn Observer,
    interrupt: &AtomicBool,
) -> Result<ContextOutcome> {
    let resume = matches!(start, ContextStart::Resume);
    let cfg = match start {
        ContextStart::Resume => read_config::<RunFile>(out)?.run,
        ContextStart::Fresh(cfg) => *cfg,
    };
    check(&cfg)?;
    let run = run_config(&cfg, out)?;
    let source = Source::open(&run, observer)?;
    let (hook, d_in) = source.hooks[0].clone();
    let ctx = source.ctx;
    if ctx < 3 {
        bail!("the cache's windows of {ctx} positions are too short for contextual training");
    }
    let len = ctx - 1;
    let batch_tokens = (cfg.batch_windows * ctx) as u64;
    // Whole windows: the cache's training windows, or fewer for --tokens.
    let windows = match cfg.tokens {
        Some(t) => source.training_windows.min(t / ctx as u64),
        None => source.training_windows,
    };
    let total_steps = windows / cfg.batch_windows as u64;
    // Specs first: a bad one is named before anything about the data.
    let specs = cfg
        .dictionaries
        .iter()
        .enumerate()
        .map(|(i, text)| ContextSpec::parse(text, d_in, total_steps.max(1), cfg.seed, i))
        .collect::<Result<Vec<_>>>()?;
    if total_steps == 0 {
        bail!(
            "{windows} training windows make no step of {} windows (--batch-windows)",
            cfg.batch_windows
        );
    }
    let mut names: Vec<&str> = specs.iter().map(ContextSpec::name).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        bail!("--sae: the name `{}` is used by two dictionaries", w[0]);
    }

    // Everything is checked before the folder is made: a refused run leaves nothing.
    if !resume {
        folder::create(out, "--out")?;
    }
    let _lock = folder::lock(out, "--out")?;
    if !resume && out.join(CONFIG).exists() {
        bail!(
            "--out {} already holds a run: continue it with --resume, or choose another folder",
            out.display()
        );
    }
    let checkpoints = out.join("checkpoints");
    let (mut trainers, done) = match resume.then(|| latest_checkpoint(&checkpoints)).flatten() {
        Some((step, dir)) => {
            observer.note(&format!("resuming from {} (step {step})", dir.display()));
            let trainers = specs
                .iter()
                .map(|s| ContextTrainer::load_checkpoint(s, &dir.join(s.name())))
                .collect::<Result<Vec<_>>>()?;
            trim_metrics(&out.join("metrics.jsonl"), step)?;
            (trainers, step)
        }
        None if resume => bail!("--resume: {} holds no checkpoint", checkpoints.display()),
        None => {
            let trainers = specs
                .iter()
                .map(ContextTrainer::new)
                .collect::<Result<Vec<_>>>()?;
            let file = RunFile {
                run: cfg.clone(),
                dictionaries: specs.clone(),
                total_steps,
            };
            write_atomic(&out.join(CONFIG), &serde_json::to_vec_pretty(&file)?)?;
            write_atomic(&out.join("metrics.jsonl"), b"")?;
            (trainers, 0)
        }
    };

    let mut batches = ActivationBuffer::new(
        source.stream(&run, None)?,
        BufferConfig {
            bytes: cfg.buffer_mib << 20,
            shape: BatchShape::Windows(cfg.batch_windows),
            seed: cfg.seed,
            include_special: true,
        },
    )
    .context("--buffer-mib")?;
    for replayed in 0..done {
        batches
            .next()
            .context("the data ended before the checkpoint")??;
        observer.replayed(replayed + 1, done);
    }
    let mut log = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(out.join("metrics.jsonl"))?;
    observer.started(done, total_steps);
    // Seconds each dictionary spent in its steps, this session.
    let mut seconds = vec![0.0f64; trainers.len()];
    let mut step = done;
    while step < total_steps {
        let Some(batch) = batches.next() else {
            break;
        };
        let batch = batch?;
        if batch.rows < cfg.batch_windows {
            break;
        }
        let x = without_first_position(&batch, ctx, d_in)?;
        let mut lines = Vec::with_capacity(trainers.len());
        for (i, trainer) in trainers.iter_mut().enumerate() {
            let t0 = Instant::now();
            lines.push(trainer.step(&x, len)?);
            seconds[i] += t0.elapsed().as_secs_f64();
        }
        step += 1;
        observer.stepped(step, total_steps, &[]);
        if step % cfg.log_every == 0 || step == total_steps {
            let tokens = (step - done) * (cfg.batch_windows * len) as u64;
            for ((spec, line), secs) in specs.iter().zip(&lines).zip(&seconds) {
                let mut v = serde_json::to_value(line)?;
                v["name"] = spec.name().into();
                v["tokens"] = (step * batch_tokens).into();
                v["tokens_per_s"] = (tokens as f64 / secs.max(1e-9)).into();
                writeln!(log, "{v}")?;
            }
        }
        let stop = interrupt.load(Ordering::SeqCst);
        if step % cfg.checkpoint_every == 0 || stop {
            save_checkpoint(&trainers, &specs, &checkpoints, step)?;
        }
        if stop {
            return Ok(ContextOutcome::Interrupted { step });
        }
    }
    observer.trained();
    if step == 0 {
        bail!("the data ended before the first full batch: nothing was trained");
    }
    save_checkpoint(&trainers, &specs, &checkpoints, step)?;
    let metadata = Metadata {
        model_name: Some(source.model.clone()),
        hook_name: Some(hook.clone()),
        context_size: Some(ctx as u64),
        dataset_path: Some(source.corpus.clone()),
        ..Metadata::default()
    };
    let dictionaries: Vec<Box<dyn WindowDictionary>> = trainers
        .iter()
        .map(|t| t.dictionary(metadata.clone()))
        .collect();
    let final_dir = out.join("final");
    for (spec, dict) in specs.iter().zip(&dictionaries) {
        dict.save(&final_dir.join(spec.name()))
            .with_context(|| format!("saving {}", spec.name()))?;
    }
    let holdout = match cfg.holdout_windows {
        0 => None,
        _ => Some(evaluate_windows(&source, &run, &dictionaries, ctx)?),
    };
    let trained_tokens = (step - done) * (cfg.batch_windows * len) as u64;
    let per_dictionary: Vec<serde_json::Value> = specs
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let held = holdout.as_ref().map(|h| &h[i]);
            let k = spec.k().map_or(0.0, |k| k as f64);
            let codes = held.map_or(k, |h| h.codes_per_position);
            serde_json::json!({
                "name": spec.name(),
                "kind": spec.kind(),
                "width": spec.width(),
                "k": spec.k(),
                "parameters": spec.parameters(),
                "train_flops_per_token": spec.train_flops_per_token(k, codes, len),
                "attention_flops_per_token": spec.attention_flops_per_token(len),
                "tokens_per_s": (seconds[i] > 0.0).then(|| trained_tokens as f64 / seconds[i]),
                "holdout": held,
            })
        })
        .collect();
    let summary = serde_json::json!({
        "hook": hook,
        "window": len,
        "steps": step,
        "planned_steps": total_steps,
        "tokens": step * batch_tokens,
        "holdout_windows": cfg.holdout_windows,
        "dictionaries": per_dictionary,
    });
    write_atomic(
        &out.join("summary.json"),
        &serde_json::to_vec_pretty(&summary)?,
    )?;
    // The run page: training curves of every dictionary from metrics.jsonl.
    saelab_report::write_run_report(out)?;
    Ok(ContextOutcome::Finished(Box::new(summary)))
}

fn check(cfg: &ContextualConfig) -> Result<()> {
    if cfg.dictionaries.is_empty() {
        bail!("--sae: give at least one dictionary");
    }
    if cfg.batch_windows == 0 {
        bail!("--batch-windows must be at least 1");
    }
    if cfg.checkpoint_every == 0 || cfg.log_every == 0 {
        bail!("--checkpoint-every and --log-every must be at least 1");
    }
    Ok(())
}

/// The data settings of `saelab train` that `Source` reads.
fn run_config(cfg: &ContextualConfig, out: &Path) -> Result<RunConfig> {
    let mut run: RunConfig = toml::from_str("sae = []").context("the run's defaults")?;
    run.cache = Some(cfg.cache.clone());
    run.tokens = cfg.tokens;
    run.holdout_windows = cfg.holdout_windows;
    run.seed = cfg.seed;
    run.buffer_mib = cfg.buffer_mib;
    run.hooks = match &cfg.hook {
        Some(h) => vec![h.clone()],
        None => {
            let cache = saelab_data::cache::ActivationCache::open(&cfg.cache)
                .with_context(|| format!("--cache {}", cfg.cache.display()))?;
            match cache.manifest.spec.hooks.as_slice() {
                [one] => vec![one.name.clone()],
                many => bail!(
                    "--hook: the cache {} holds {} hooks ({}): name the one to train on (run folder {})",
                    cfg.cache.display(),
                    many.len(),
                    many.iter().map(|h| h.name.as_str()).collect::<Vec<_>>().join(", "),
                    out.display()
                ),
            }
        }
    };
    Ok(run)
}

/// `[windows · (ctx − 1), d]`: each window without its first position. Padded windows are
/// refused: a contextual dictionary reads positions in order, with no holes.
fn without_first_position(batch: &ActivationBatch, ctx: usize, d: usize) -> Result<Vec<f32>> {
    if batch.mask.contains(&0) {
        bail!("the cache's windows hold padding: contextual training needs packed windows (harvest with --packing packed)");
    }
    let x = &batch.hooks[0];
    let mut out = Vec::with_capacity(batch.rows * (ctx - 1) * d);
    for w in 0..batch.rows {
        out.extend_from_slice(&x[(w * ctx + 1) * d..(w + 1) * ctx * d]);
    }
    Ok(out)
}

/// `dir/step_N` written whole; older checkpoints are removed (the newest is all a resume
/// needs; a folder marked `keep` is spared).
fn save_checkpoint(
    trainers: &[ContextTrainer],
    specs: &[ContextSpec],
    dir: &Path,
    step: u64,
) -> Result<()> {
    write_checkpoint(dir, step, |tmp| {
        for (t, s) in trainers.iter().zip(specs) {
            t.save_checkpoint(&tmp.join(s.name()))?;
        }
        Ok(())
    })?;
    prune_checkpoints(dir, 1)
}

/// One dictionary on the held-out windows.
#[derive(Clone, Debug, Serialize)]
pub struct WindowMetrics {
    /// Σ‖x − x̂‖² / Σ‖x − mean(x)‖² over all held-out positions.
    pub fvu: f64,
    pub mse: f64,
    /// What a position pays for, per position.
    pub l0: f64,
    /// Codes on per position (carried ones included).
    pub codes_per_position: f64,
    pub context_share: f64,
    /// Latents never on in the held-out windows.
    pub dead_fraction: f64,
    /// Over latents on at least `PERSISTENCE_MIN_FIRES` times: median P(stay) and median
    /// mean run length.
    pub median_p_stay: Option<f64>,
    pub median_run: Option<f64>,
    pub positions: u64,
}

const PERSISTENCE_MIN_FIRES: u64 = 20;

/// Every dictionary on the held-out windows (without their first positions), in chunks of
/// 32 windows.
fn evaluate_windows(
    source: &Source,
    run: &RunConfig,
    dictionaries: &[Box<dyn WindowDictionary>],
    ctx: usize,
) -> Result<Vec<WindowMetrics>> {
    let d = source.hooks[0].1;
    let len = ctx - 1;
    struct Acc {
        sse: f64,
        paid: u64,
        codes: u64,
        energy: (f64, f64),
        persistence: Vec<Persistence>,
    }
    let mut acc: Vec<Acc> = dictionaries
        .iter()
        .map(|dict| Acc {
            sse: 0.0,
            paid: 0,
            codes: 0,
            energy: (0.0, 0.0),
            persistence: vec![Persistence::default(); dict.d_sae()],
        })
        .collect();
    let (mut sum, mut sum_sq) = (vec![0.0f64; d], 0.0f64);
    let mut positions = 0u64;
    let mut add = |chunk: &[f32]| -> Result<()> {
        for row in chunk.chunks(d) {
            for (s, &v) in sum.iter_mut().zip(row) {
                *s += v as f64;
                sum_sq += (v as f64) * (v as f64);
            }
        }
        positions += (chunk.len() / d) as u64;
        for (dict, a) in dictionaries.iter().zip(&mut acc) {
            let out = dict.run_windows(chunk, len)?;
            a.sse += chunk
                .iter()
                .zip(&out.reconstruction)
                .map(|(x, r)| ((x - r) as f64).powi(2))
                .sum::<f64>();
            a.paid += out.paid.nnz() as u64;
            a.codes += out.codes.nnz() as u64;
            a.energy.0 += out.context_energy.0;
            a.energy.1 += out.context_energy.1;
            for (total, p) in a.persistence.iter_mut().zip(persistence(&out.codes, len)) {
                total.fires += p.fires;
                total.pairs += p.pairs;
                total.stays += p.stays;
                total.runs += p.runs;
            }
        }
        Ok(())
    };
    let mut chunk: Vec<f32> = Vec::new();
    for window in source.stream(run, Some(()))? {
        let w = window?;
        if w.mask.contains(&0) {
            bail!("the held-out windows hold padding: contextual evaluation needs packed windows");
        }
        chunk.extend_from_slice(&w.hooks[0][d..ctx * d]);
        if chunk.len() == 32 * len * d {
            add(&chunk)?;
            chunk.clear();
        }
    }
    if !chunk.is_empty() {
        add(&chunk)?;
    }
    if positions == 0 {
        bail!("no held-out windows to evaluate");
    }
    let n = positions as f64;
    let total_variance = sum_sq - sum.iter().map(|s| s * s / n).sum::<f64>();
    Ok(acc
        .into_iter()
        .map(|a| {
            let median = |mut v: Vec<f64>| -> Option<f64> {
                v.sort_by(f64::total_cmp);
                (!v.is_empty()).then(|| v[v.len() / 2])
            };
            let busy: Vec<&Persistence> = a
                .persistence
                .iter()
                .filter(|p| p.fires >= PERSISTENCE_MIN_FIRES)
                .collect();
            let (ctx_e, new_e) = a.energy;
            WindowMetrics {
                fvu: a.sse / total_variance.max(f64::MIN_POSITIVE),
                mse: a.sse / (n * d as f64),
                l0: a.paid as f64 / n,
                codes_per_position: a.codes as f64 / n,
                context_share: if ctx_e + new_e > 0.0 {
                    ctx_e / (ctx_e + new_e)
                } else {
                    0.0
                },
                dead_fraction: a.persistence.iter().filter(|p| p.fires == 0).count() as f64
                    / a.persistence.len().max(1) as f64,
                median_p_stay: median(busy.iter().filter_map(|p| p.p_stay()).collect()),
                median_run: median(busy.iter().filter_map(|p| p.mean_run()).collect()),
                positions,
            }
        })
        .collect())
}
