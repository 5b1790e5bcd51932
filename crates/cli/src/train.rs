//! `saelab train`: one or more dictionaries trained in parallel from one stream of
//! activations (a live model or a harvested cache), with metrics, checkpoints that resume
//! exactly, a held-out evaluation and a summary table.
//!
//! A run folder holds `config.json`, `metrics.jsonl`, `checkpoints/step_N/<name>/` and
//! `final/<name>/` (SAELens folders). Resuming replays the data stream up to the checkpoint
//! (cheap from a cache; a live stream re-runs the model), so the batches after it are the
//! ones an uninterrupted run would have drawn.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use saelab_data::activations::{
    live_windows, ActivationBuffer, BatchShape, BufferConfig, LiveSpec, WindowStream,
};
use saelab_data::cache::{ActivationCache, ReadOptions};
use saelab_data::{Packing, WindowConfig};
use saelab_model::HookPoint;
use saelab_sae::train::set::{DictionarySpec, TrainerSet};
use saelab_sae::{Dictionary, L1Variant, Metadata, TrainArchitecture, TrainConfig};

use crate::corpus_arg::CorpusArg;
use crate::progress::Progress;
use crate::run_folder;
use crate::train_config::{RunConfig, SaeEntry, KINDS};
use crate::train_eval::{evaluate_holdout, print_summary};
use crate::train_files::{latest_checkpoint, prune_checkpoints, save_checkpoint, trim_metrics};

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
    /// Hook point(s) to read (default blocks.6.hook_resid_post).
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
}

const CONFIG: &str = "config.json";

/// The flags that set a run (beside `--sae`): given with `--config` or `--resume`, which
/// take the run's settings from a file, they would be ignored, so they are refused.
const RUN_FLAGS: [&str; 17] = [
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
];

pub fn run(args: Args) -> Result<()> {
    let out = args.out.clone();
    // Held until the run returns: a second writer into this folder is refused.
    let _lock;
    let run = if args.resume {
        let path = out.join(CONFIG);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("--resume: {} (is --out a run folder?)", path.display()))?;
        _lock = run_folder::lock(&out, "--out")?;
        let run = serde_json::from_str::<RunFile>(&text)
            .with_context(|| format!("{}", path.display()))?
            .run;
        run.check()?;
        run
    } else {
        // Settings are checked before the folder is created, so a refused run leaves nothing.
        let run = from_args(&args)?;
        run.check()?;
        run_folder::create(&out, "--out")?;
        _lock = run_folder::lock(&out, "--out")?;
        run_folder::refuse_foreign(&out, "--out", "a training run", is_run_file)?;
        if out.join(CONFIG).exists() {
            bail!(
                "--out {} already holds a run: continue it with --resume, or choose another folder",
                out.display()
            );
        }
        run
    };

    let source = Source::open(&run)?;
    // Checked before training, not when the baseline is fitted at the end of the run.
    if let Some(k) = run.pca.filter(|&k| k > source.hooks[0].1) {
        bail!(
            "`pca` = {k} is more components than {} has dimensions ({})",
            source.hooks[0].0,
            source.hooks[0].1
        );
    }
    let total_steps = source.total_steps(run.batch)?;
    // Derived afresh on resume too, so that an edited config.json is caught against the
    // checkpoint's config.
    let specs = dictionary_specs(&run, &source, total_steps)?;

    let checkpoints = out.join("checkpoints");
    let (mut set, done) = match args
        .resume
        .then(|| latest_checkpoint(&checkpoints))
        .flatten()
    {
        Some((step, dir)) => {
            eprintln!("resuming from {} (step {step})", dir.display());
            let set = TrainerSet::load_checkpoint(specs, &dir)?;
            trim_metrics(&out.join("metrics.jsonl"), step)?;
            (set, step)
        }
        None if args.resume => bail!("--resume: {} holds no checkpoint", checkpoints.display()),
        None => {
            let set = TrainerSet::new(specs)?;
            let file = RunFile {
                run: run.clone(),
                dictionaries: set.specs().to_vec(),
                total_steps,
            };
            write_atomic(&out.join(CONFIG), &serde_json::to_vec_pretty(&file)?)?;
            // A fresh run starts a fresh log.
            write_atomic(&out.join("metrics.jsonl"), b"")?;
            (set, 0)
        }
    };

    let interrupted = Arc::new(AtomicBool::new(false));
    let flag = interrupted.clone();
    let _ = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst));

    let mut batches = source.token_batches(&run)?;
    let mut pca = run
        .pca
        .map(|_| saelab_sae::baseline::PcaFit::new(source.hooks[0].1));
    if done > 0 {
        let mut replay = Progress::new("replaying data to the checkpoint (steps)", done);
        for _ in 0..done {
            let batch = batches
                .next()
                .context("the data ended before the checkpoint")??;
            // The PCA baseline is fitted on every training batch, the replayed ones too.
            if let Some(fit) = pca.as_mut() {
                fit.add(&batch.hooks[0]);
            }
            replay.inc(1);
        }
        replay.finish();
    }
    let mut log = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(out.join("metrics.jsonl"))?;
    let mut progress = Progress::new("train (steps)", total_steps);
    progress.set_position(done);
    let start = Instant::now();
    let mut last_stats = Vec::new();
    while set.steps() < total_steps {
        let Some(batch) = batches.next() else {
            break;
        };
        let batch = batch?;
        if batch.rows < run.batch {
            break; // the last, partial batch
        }
        let hooks: Vec<&[f32]> = batch.hooks.iter().map(Vec::as_slice).collect();
        if let Some(fit) = pca.as_mut() {
            fit.add(hooks[0]);
        }
        let stats = set.step(&hooks)?;
        let step = set.steps();
        progress.inc(1);
        if step % run.log_every == 0 || step == total_steps {
            let tokens_per_s =
                ((step - done) * run.batch as u64) as f64 / start.elapsed().as_secs_f64();
            for (spec, s) in set.specs().iter().zip(&stats) {
                let mut line = serde_json::to_value(s)?;
                line["name"] = spec.name.clone().into();
                line["tokens"] = (step * run.batch as u64).into();
                line["tokens_per_s"] = tokens_per_s.into();
                writeln!(log, "{line}")?;
            }
        }
        last_stats = stats;
        let stop = interrupted.load(Ordering::SeqCst);
        if step % run.checkpoint_every == 0 || stop {
            save_checkpoint(&set, &checkpoints, step)?;
            prune_checkpoints(&checkpoints, run.keep_checkpoints)?;
        }
        if stop {
            progress.finish();
            return Err(Interrupted { step, out }.into());
        }
    }
    progress.finish();
    let step = set.steps();
    if step == 0 {
        bail!(
            "the data ended before the first full batch of {} tokens: nothing was trained (the \
             run planned {total_steps} steps); give a larger corpus or cache, or fewer --tokens",
            run.batch
        );
    }
    let stopped_early = step < total_steps;
    if stopped_early {
        eprintln!(
            "warning: the data ended after {step} of the {total_steps} planned steps ({} of {} \
             tokens): the dictionaries saw fewer tokens than asked and the lr schedule did not \
             finish its decay (summary.json: \"stopped_early\")",
            step * run.batch as u64,
            total_steps * run.batch as u64
        );
    }
    save_checkpoint(&set, &checkpoints, step)?;
    prune_checkpoints(&checkpoints, run.keep_checkpoints)?;
    let final_dir = out.join("final");
    for (spec, trainer) in set.specs().iter().zip(set.trainers()) {
        trainer
            .dictionary()
            .save(&final_dir.join(&spec.name))
            .with_context(|| format!("saving {}", spec.name))?;
    }
    let fitted = match (&pca, run.pca) {
        (Some(fit), Some(k)) => Some(fit.fit(k)?),
        _ => None,
    };
    let holdout = match run.holdout_windows {
        0 => None,
        _ => Some(evaluate_holdout(&run, &source, &set, fitted.as_ref())?),
    };
    let summary = serde_json::json!({
        "steps": step,
        "planned_steps": total_steps,
        "stopped_early": stopped_early,
        "tokens": step * run.batch as u64,
        "seconds": start.elapsed().as_secs_f64(),
        "last_step": set.specs().iter().zip(&last_stats).map(|(spec, s)| {
            let mut v = serde_json::to_value(s).unwrap_or_default();
            v["name"] = spec.name.clone().into();
            v
        }).collect::<Vec<_>>(),
        "holdout": holdout,
    });
    write_atomic(
        &out.join("summary.json"),
        &serde_json::to_vec_pretty(&summary)?,
    )?;
    print_summary(&set, &last_stats, holdout.as_ref());
    let report = saelab_report::write_run_report(&out)?;
    println!("dictionaries in {}", final_dir.display());
    println!("report: {}", report.display());
    Ok(())
}

/// A run stopped by Ctrl-C after its checkpoint. Not a success: `main` exits with 130
/// (128 + SIGINT) so that `saelab train … && saelab eval …` stops without a `final/` folder.
#[derive(Debug)]
pub struct Interrupted {
    step: u64,
    out: PathBuf,
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "interrupted at step {} (checkpoint saved); continue with: saelab train --out {} --resume",
            self.step,
            self.out.display()
        )
    }
}

impl std::error::Error for Interrupted {}

/// What a run writes into its folder (`.saelab-tmp-` files are atomic writes cut short):
/// a folder holding anything else is used for something else.
fn is_run_file(name: &str) -> bool {
    name.starts_with(".saelab-tmp-")
        || [
            CONFIG,
            "metrics.jsonl",
            "checkpoints",
            "final",
            "summary.json",
            "eval.json",
            saelab_report::RUN_REPORT,
        ]
        .contains(&name)
}

/// `config.json` of a run.
#[derive(serde::Serialize, serde::Deserialize)]
struct RunFile {
    run: RunConfig,
    dictionaries: Vec<DictionarySpec>,
    total_steps: u64,
}

/// Each dictionary's name, hook and full training config, from the run's `--sae` entries.
fn dictionary_specs(
    run: &RunConfig,
    source: &Source,
    total_steps: u64,
) -> Result<Vec<DictionarySpec>> {
    let d_of = |hook: &str| -> Result<(usize, usize)> {
        let i = source
            .hooks
            .iter()
            .position(|h| h.0 == hook)
            .with_context(|| format!("hook {hook} is not among the run's hooks"))?;
        Ok((i, source.hooks[i].1))
    };
    run.sae
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            let hook = entry.hook.clone().unwrap_or_else(|| run.hooks[0].clone());
            let (index, d) = d_of(&hook)?;
            let out_hook = match &entry.out_hook {
                Some(out) => {
                    let (out_index, d_out) = d_of(out)
                        .with_context(|| format!("--sae {}: `out_hook`", entry.label(i)))?;
                    if d_out != d {
                        bail!(
                            "--sae {}: `out_hook` {out} has {d_out} values per token, `hook` \
                             {hook} {d}: a transcoder maps between hooks of one width",
                            entry.label(i)
                        );
                    }
                    Some(out_index)
                }
                None => None,
            };
            let config = train_config(entry, d, total_steps, run, source, &hook)
                .with_context(|| format!("--sae {}", entry.label(i)))?;
            Ok(DictionarySpec {
                name: entry.label(i),
                hook: index,
                out_hook,
                config,
            })
        })
        .collect()
}

fn from_args(args: &Args) -> Result<RunConfig> {
    if let Some(path) = &args.config {
        return RunConfig::from_toml(path);
    }
    Ok(RunConfig {
        model: args.model.clone(),
        corpus: args.corpus.corpus.clone(),
        cache: args.cache.clone(),
        hooks: match args.hook.is_empty() {
            true => vec!["blocks.6.hook_resid_post".into()],
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
        sae: args
            .sae
            .iter()
            .map(|s| SaeEntry::parse(s))
            .collect::<Result<Vec<_>>>()?,
    })
}

fn train_config(
    entry: &SaeEntry,
    d: usize,
    total_steps: u64,
    run: &RunConfig,
    source: &Source,
    hook: &str,
) -> Result<TrainConfig> {
    let arch = match entry.kind.as_str() {
        "topk" => TrainArchitecture::TopK {
            k: entry.k.context("`k` is required for topk")?,
        },
        "batchtopk" => TrainArchitecture::BatchTopK {
            k: entry.k.context("`k` is required for batchtopk")?,
        },
        "matryoshka" => TrainArchitecture::MatryoshkaBatchTopK {
            k: entry.k.context("`k` is required for matryoshka")?,
        },
        "relu" => TrainArchitecture::ReluL1 {
            variant: L1Variant::Standard,
        },
        "april" => TrainArchitecture::ReluL1 {
            variant: L1Variant::April,
        },
        "jumprelu" => TrainArchitecture::JumpRelu,
        "gated" => TrainArchitecture::Gated,
        other => bail!("unknown kind `{other}` ({})", KINDS.join(", ")),
    };
    let mut cfg = TrainConfig::new(arch, d, entry.width, total_steps);
    cfg.seed = run.seed;
    cfg.normalize_activations = entry.normalize.unwrap_or(true);
    if let Some(optimizer) = entry.optimizer()? {
        cfg.use_optimizer(optimizer);
    }
    if let Some(init) = entry.b_dec_init()? {
        cfg.b_dec_init = init;
    }
    if let Some(m) = entry.momentum {
        cfg.signum_momentum = m;
    }
    if let Some(a) = entry.aux {
        cfg.aux_coefficient = a;
    }
    if let Some(s) = entry.encoder_scale {
        cfg.encoder_init_scale = Some(s);
    }
    if let Some(w) = entry.warmup {
        cfg.lr_warmup_steps = w;
    }
    if let Some(d) = entry.decay {
        cfg.lr_decay_steps = d;
    }
    if let Some(lr) = entry.lr {
        cfg.lr = lr;
    }
    if let Some(l1) = entry.l1 {
        cfg.l1_coefficient = l1;
    }
    if let Some(l0) = entry.l0 {
        cfg.l0_coefficient = l0;
    }
    cfg.target_l0 = entry.target_l0;
    if let Some(widths) = &entry.widths {
        cfg.matryoshka_widths = widths.clone();
        if widths.last() != Some(&entry.width) {
            cfg.matryoshka_widths.push(entry.width);
        }
    }
    if let Some(b) = entry.bandwidth {
        cfg.jumprelu_bandwidth = b;
    }
    if let Some(t) = entry.threshold {
        cfg.jumprelu_init_threshold = t;
    }
    if let Some(ghost) = entry.ghost_grads {
        cfg.ghost_grads = ghost;
    }
    if let Some(every) = entry.resample_every {
        cfg.resample_every_steps = every;
    }
    if let Some(dead) = entry.dead_after_tokens {
        cfg.dead_after_tokens = dead;
    }
    cfg.transcoder = entry.out_hook.is_some();
    cfg.skip_connection = entry.skip.unwrap_or(false);
    cfg.metadata = Metadata {
        model_name: Some(source.model.clone()),
        hook_name: Some(hook.to_string()),
        hook_name_out: entry.out_hook.clone(),
        context_size: Some(source.ctx as u64),
        prepend_bos: Some(true),
        dataset_path: Some(source.corpus.clone()),
        exclude_special_tokens: Some(true),
        ..Metadata::default()
    };
    cfg.validate()?;
    Ok(cfg)
}

/// Where activations come from: a cache, or a model over a corpus.
pub struct Source {
    pub model: String,
    pub corpus: String,
    pub ctx: usize,
    /// (name, width) of each hook, in the run's order.
    pub hooks: Vec<(String, usize)>,
    pub training_tokens: u64,
    cache: Option<ActivationCache>,
    /// Windows of the cache used for training (the rest is held out).
    pub training_windows: u64,
    live: Option<(
        Arc<saelab_model::LoadedModel>,
        saelab_data::Corpus,
        Vec<HookPoint>,
    )>,
}

impl Source {
    pub fn open(run: &RunConfig) -> Result<Source> {
        if let Some(dir) = &run.cache {
            let cache =
                ActivationCache::open(dir).with_context(|| format!("--cache {}", dir.display()))?;
            let spec = &cache.manifest.spec;
            if !cache.manifest.complete {
                eprintln!(
                    "warning: the harvest in {} is not finished; training on its {} windows \
                     (rerun the harvest to complete it)",
                    dir.display(),
                    cache.manifest.windows()
                );
            }
            let mut hooks = Vec::new();
            for name in &run.hooks {
                let h = spec
                    .hooks
                    .iter()
                    .find(|h| &h.name == name)
                    .with_context(|| {
                        format!(
                            "--hook {name}: the cache {} does not hold it",
                            dir.display()
                        )
                    })?;
                hooks.push((h.name.clone(), h.d));
            }
            let windows = cache.manifest.windows();
            if run.holdout_windows >= windows {
                bail!("--holdout-windows {} leaves nothing of the cache's {windows} windows to train on", run.holdout_windows);
            }
            let training_windows = windows - run.holdout_windows;
            let per_window = cache.manifest.tokens() as f64 / windows as f64;
            let available = (training_windows as f64 * per_window) as u64;
            let training_tokens = run.tokens.unwrap_or(available).min(available);
            return Ok(Source {
                model: spec.model.clone(),
                corpus: spec.corpus.clone(),
                ctx: spec.window.len,
                hooks: hooks.clone(),
                training_tokens,
                training_windows,
                cache: Some(cache),
                live: None,
            });
        }
        let tokens = run
            .tokens
            .context("--tokens is required when training from a live model (the lr schedule needs the run's length); or train from a --cache")?;
        if run.holdout_windows > 0 {
            bail!("--holdout-windows needs --cache (held-out windows are the cache's last ones)");
        }
        let loaded = Arc::new(saelab_model::load(run.model.as_deref()).context("--model")?);
        let cfg = &loaded.model.cfg;
        let points = run
            .hooks
            .iter()
            .map(|h| HookPoint::parse(h, cfg).context("--hook"))
            .collect::<Result<Vec<_>>>()?;
        let corpus = saelab_data::Corpus::open(&run.corpus, &saelab_data::CorpusOptions::default())
            .context("--corpus")?;
        Ok(Source {
            model: loaded.name.clone(),
            corpus: corpus.name.clone(),
            ctx: run.ctx,
            hooks: points
                .iter()
                .map(|p| (p.to_string(), p.width(cfg)))
                .collect(),
            training_tokens: tokens,
            training_windows: 0,
            cache: None,
            live: Some((loaded, corpus, points)),
        })
    }

    /// Steps of `batch` tokens in the training tokens.
    pub fn total_steps(&self, batch: usize) -> Result<u64> {
        match self.training_tokens / batch as u64 {
            0 => bail!(
                "{} training tokens make no step of {batch}",
                self.training_tokens
            ),
            steps => Ok(steps),
        }
    }

    /// The training batches, shuffled through the run's buffer.
    pub fn token_batches(&self, run: &RunConfig) -> Result<ActivationBuffer> {
        let stream = self.stream(run, None)?;
        let mut bytes = run.buffer_bytes()?;
        if self.live.is_some() {
            let row = ActivationBuffer::bytes_per_row(stream.layout(), 1);
            bytes = live_buffer_bytes(bytes, self.training_tokens, run.batch, run.ctx, row);
        }
        let config = BufferConfig {
            bytes,
            shape: BatchShape::Tokens(run.batch),
            seed: run.seed,
            include_special: false,
        };
        ActivationBuffer::new(stream, config).context("--buffer-mib")
    }

    /// The activation windows: training windows, or with `holdout` the held-out ones.
    pub fn stream(&self, run: &RunConfig, holdout: Option<()>) -> Result<WindowStream> {
        if let Some(cache) = &self.cache {
            let total = cache.manifest.windows();
            let options = match holdout {
                None => ReadOptions {
                    end_window: Some(self.training_windows),
                    ..ReadOptions::default()
                },
                Some(()) => ReadOptions {
                    skip_windows: self.training_windows,
                    end_window: Some(total),
                    ..ReadOptions::default()
                },
            };
            // Hooks are read in the run's order; a cache holding others is fine.
            return Ok(select_hooks(cache.windows(options), &self.hooks));
        }
        let Some((model, corpus, points)) = &self.live else {
            bail!("no activation source");
        };
        let window = WindowConfig::for_tokenizer(&model.tokenizer, run.ctx, Packing::Packed);
        Ok(live_windows(
            model.clone(),
            corpus.documents(),
            LiveSpec {
                points: points.clone(),
                window,
                batch_windows: 32,
                max_windows: None,
                skip_windows: 0,
            },
        )?)
    }
}

/// A live run's buffer: at most what the run trains on (its tokens, one more batch and one
/// window for the refill). The buffer fills before the first step, and a full 1 GiB buffer
/// would make the model run far past a small `--tokens` first, looking hung. A cache keeps
/// the whole `--buffer-mib` (reading it is cheap, and its runs reproduce as they did).
fn live_buffer_bytes(bytes: usize, tokens: u64, batch: usize, ctx: usize, row: usize) -> usize {
    let rows = usize::try_from(tokens)
        .unwrap_or(usize::MAX)
        .saturating_add(batch)
        .saturating_add(ctx);
    bytes.min(rows.saturating_mul(row))
}

/// The stream with only `hooks`, in that order.
fn select_hooks(stream: WindowStream, hooks: &[(String, usize)]) -> WindowStream {
    let layout = stream.layout().clone();
    let order: Vec<usize> = hooks
        .iter()
        .filter_map(|(name, _)| layout.hooks.iter().position(|h| &h.name == name))
        .collect();
    if order == (0..layout.hooks.len()).collect::<Vec<_>>() {
        return stream;
    }
    let new_layout = saelab_data::activations::Layout {
        ctx: layout.ctx,
        hooks: order.iter().map(|&i| layout.hooks[i].clone()).collect(),
    };
    WindowStream::spawn(new_layout, 1, move |sink| {
        for w in stream {
            let mut w = w?;
            w.hooks = order
                .iter()
                .map(|&i| std::mem::take(&mut w.hooks[i]))
                .collect();
            if !sink.send(vec![w]) {
                break;
            }
        }
        Ok(())
    })
}

pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    saelab_data::cache::manifest::write_atomically(path, bytes)
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::live_buffer_bytes;

    #[test]
    fn a_live_buffer_holds_no_more_than_the_run_trains_on() {
        let gib = 1 << 30;
        // 40,960 tokens of 2,316-byte rows: 45 MiB, not 1 GiB.
        let bytes = live_buffer_bytes(gib, 40_960, 4096, 128, 2316);
        assert_eq!(bytes, (40_960 + 4096 + 128) * 2316);
        // A long run keeps the whole buffer; sizes that overflow saturate.
        assert_eq!(live_buffer_bytes(gib, 100_000_000, 4096, 128, 2316), gib);
        assert_eq!(live_buffer_bytes(gib, u64::MAX, usize::MAX, 128, 2316), gib);
    }
}
