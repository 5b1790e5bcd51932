//! The run loop: one or more dictionaries trained in parallel from one stream of activations
//! (a live model or a harvested cache), with metrics, checkpoints that resume exactly, a
//! held-out evaluation and a summary.
//!
//! A run folder holds `config.json`, `metrics.jsonl`, `checkpoints/step_N/<name>/`,
//! `snapshots/<name>/` (density snapshots, `snapshots.rs`) and
//! `final/<name>/` (SAELens folders). Resuming replays the data stream up to the checkpoint
//! (cheap from a cache; a live stream re-runs the model), so the batches after it are the
//! ones an uninterrupted run would have drawn.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use saelab_sae::train::set::{DictionarySpec, TrainerSet};
use saelab_sae::{Dictionary, Metadata, SaeSpec, StepStats, TrainConfig};

use crate::baselines::{BaselineFits, Baselines, BASELINES};
use crate::config::RunConfig;
use crate::files::{
    latest_checkpoint, prune_checkpoints, read_config, save_checkpoint, trim_metrics,
};
use crate::holdout::evaluate_holdout;
use crate::snapshots;
use crate::source::Source;
use crate::{folder, write_atomic, Observer};

pub use crate::files::CONFIG;

/// How a run starts.
pub enum Start {
    /// A new run into an empty (or missing) folder.
    Fresh(Box<RunConfig>),
    /// The run in the folder, from its last checkpoint, with the settings in its
    /// `config.json`.
    Resume,
}

/// How a run ended.
pub enum Outcome {
    Finished(Box<Finished>),
    /// Stopped by the interrupt flag, after a checkpoint at `step`.
    Interrupted {
        step: u64,
    },
}

/// A finished run: its trainers, what it wrote and where.
pub struct Finished {
    pub set: TrainerSet,
    /// Each dictionary's statistics at its last step.
    pub last_stats: Vec<StepStats>,
    /// `summary.json`'s content.
    pub summary: serde_json::Value,
    /// The held-out evaluation (`summary["holdout"]`), when the run held windows out.
    pub holdout: Option<serde_json::Value>,
    /// `final/`, one SAELens folder per dictionary.
    pub final_dir: PathBuf,
    /// The run's HTML report.
    pub report: PathBuf,
}

/// `config.json` of a run.
#[derive(serde::Serialize, serde::Deserialize)]
struct RunFile {
    run: RunConfig,
    dictionaries: Vec<DictionarySpec>,
    total_steps: u64,
}

/// Trains the run in `out` to its end, or until `interrupt` is set (then a checkpoint is
/// taken and `Outcome::Interrupted` returned). The folder is locked for the run's length: a
/// second writer is refused.
pub fn train(
    out: &Path,
    start: Start,
    observer: &mut dyn Observer,
    interrupt: &AtomicBool,
) -> Result<Outcome> {
    // Held until the run returns: a second writer into this folder is refused.
    let _lock;
    let resume = matches!(start, Start::Resume);
    let run = match start {
        Start::Resume => {
            let run = read_config::<RunFile>(out)?.run;
            _lock = folder::lock(out, "--out")?;
            run.check()?;
            run
        }
        Start::Fresh(run) => {
            let run = *run;
            // Settings are checked before the folder is created, so a refused run leaves
            // nothing.
            run.check()?;
            folder::create(out, "--out")?;
            _lock = folder::lock(out, "--out")?;
            folder::refuse_foreign(out, "--out", "a training run", is_run_file)?;
            if out.join(CONFIG).exists() {
                bail!(
                    "--out {} already holds a run: continue it with --resume, or choose another folder",
                    out.display()
                );
            }
            run
        }
    };

    let source = Source::open(&run, observer)?;
    // Checked before training, not when the baselines are fitted at the end of the run.
    let mut baselines = BaselineFits::new(&run, &source)?;
    let total_steps = source.total_steps(run.batch)?;
    // Derived afresh on resume too, so that an edited config.json is caught against the
    // checkpoint's config.
    let specs = dictionary_specs(&run, &source, total_steps)?;

    let checkpoints = out.join("checkpoints");
    let (mut set, done) = match resume.then(|| latest_checkpoint(&checkpoints)).flatten() {
        Some((step, dir)) => {
            observer.note(&format!("resuming from {} (step {step})", dir.display()));
            let set = TrainerSet::load_checkpoint(specs, &dir)?;
            trim_metrics(&out.join("metrics.jsonl"), step)?;
            (set, step)
        }
        None if resume => bail!("--resume: {} holds no checkpoint", checkpoints.display()),
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

    let mut batches = source.token_batches(&run)?;
    for replayed in 0..done {
        let batch = batches
            .next()
            .context("the data ended before the checkpoint")??;
        // The baselines are fitted on every training batch, the replayed ones too.
        if let Some(fits) = baselines.as_mut() {
            fits.add(&batch.hooks[0]);
        }
        observer.replayed(replayed + 1, done);
    }
    let mut log = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(out.join("metrics.jsonl"))?;
    observer.started(done, total_steps);
    let start = Instant::now();
    let mut last_stats = Vec::new();
    let snapshot_steps = run.snapshot_steps(total_steps);
    let mut snapshot_writer = SnapshotWriter::default();
    while set.steps() < total_steps {
        let Some(batch) = batches.next() else {
            break;
        };
        let batch = batch?;
        if batch.rows < run.batch {
            break; // the last, partial batch
        }
        let hooks: Vec<&[f32]> = batch.hooks.iter().map(Vec::as_slice).collect();
        if let Some(fits) = baselines.as_mut() {
            fits.add(hooks[0]);
        }
        let stats = set.step(&hooks)?;
        let step = set.steps();
        observer.stepped(step, total_steps, &stats);
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
        if snapshot_steps > 0 && step % snapshot_steps == 0 {
            snapshot_writer.write(out, &mut set, run.batch)?;
        }
        let stop = interrupt.load(Ordering::SeqCst);
        if step % run.checkpoint_every == 0 || stop {
            // A checkpoint vouches for the snapshots before it.
            snapshot_writer.finish()?;
            save_checkpoint(&set, &checkpoints, step)?;
            prune_checkpoints(&checkpoints, run.keep_checkpoints)?;
        }
        if stop {
            return Ok(Outcome::Interrupted { step });
        }
    }
    observer.trained();
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
        observer.warn(&format!(
            "the data ended after {step} of the {total_steps} planned steps ({} of {} tokens): \
             the dictionaries saw fewer tokens than asked and the lr schedule did not finish \
             its decay (summary.json: \"stopped_early\")",
            step * run.batch as u64,
            total_steps * run.batch as u64
        ));
    }
    if snapshot_steps > 0 && step % snapshot_steps != 0 {
        // The last stretch, so that the snapshots add up to the whole run.
        snapshot_writer.write(out, &mut set, run.batch)?;
    }
    snapshot_writer.finish()?;
    save_checkpoint(&set, &checkpoints, step)?;
    prune_checkpoints(&checkpoints, run.keep_checkpoints)?;
    let final_dir = out.join("final");
    for (spec, trainer) in set.specs().iter().zip(set.trainers()) {
        trainer
            .dictionary()
            .save(&final_dir.join(&spec.name))
            .with_context(|| format!("saving {}", spec.name))?;
    }
    let fitted = match baselines {
        Some(fits) => fits.fit(run.seed, observer)?,
        None => Baselines::default(),
    };
    fitted.save(out, &run_metadata(&source, &source.hooks[0].0, None))?;
    let holdout = match run.holdout_windows {
        0 => None,
        _ => Some(evaluate_holdout(&run, &source, &set, &fitted)?),
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
    let report = saelab_report::write_run_report(out)?;
    Ok(Outcome::Finished(Box::new(Finished {
        set,
        last_stats,
        summary,
        holdout,
        final_dir,
        report,
    })))
}

/// Writes density snapshots on a background thread: taking one is cheap, but writing it
/// (an fsync per file) cost the training loop several percent when it waited.
#[derive(Default)]
struct SnapshotWriter {
    pending: Option<std::thread::JoinHandle<Result<()>>>,
}

impl SnapshotWriter {
    /// Takes every dictionary's snapshot now and writes them while training goes on.
    fn write(&mut self, out: &Path, set: &mut TrainerSet, batch: usize) -> Result<()> {
        self.finish()?;
        let names: Vec<String> = set.specs().iter().map(|s| s.name.clone()).collect();
        let taken = set.take_snapshots();
        let out = out.to_path_buf();
        self.pending = Some(std::thread::spawn(move || {
            for (name, snapshot) in names.iter().zip(&taken) {
                snapshots::write(&out, name, snapshot, batch)
                    .with_context(|| format!("snapshot of {name}"))?;
            }
            Ok(())
        }));
        Ok(())
    }

    /// Waits for the last snapshots to be on disk.
    fn finish(&mut self) -> Result<()> {
        match self.pending.take() {
            Some(handle) => handle
                .join()
                .map_err(|_| anyhow::anyhow!("the snapshot writer panicked"))?,
            None => Ok(()),
        }
    }
}

/// What a run writes into its folder (`.saelab-tmp-` files are atomic writes cut short):
/// a folder holding anything else is used for something else.
fn is_run_file(name: &str) -> bool {
    name.starts_with(".saelab-tmp-")
        || [
            CONFIG,
            "metrics.jsonl",
            "checkpoints",
            snapshots::FOLDER,
            "final",
            "summary.json",
            "eval.json",
            BASELINES,
            saelab_report::RUN_REPORT,
        ]
        .contains(&name)
}

/// Each dictionary's name, hook and full training config, from the run's specs.
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

/// The metadata of what a run saves for `hook` (and, for a transcoder, `hook_out`): where
/// its training activations came from.
fn run_metadata(source: &Source, hook: &str, hook_out: Option<String>) -> Metadata {
    Metadata {
        model_name: Some(source.model.clone()),
        hook_name: Some(hook.to_string()),
        hook_name_out: hook_out,
        context_size: Some(source.ctx as u64),
        prepend_bos: Some(true),
        dataset_path: Some(source.corpus.clone()),
        exclude_special_tokens: Some(true),
        ..Metadata::default()
    }
}

/// The library's config for `entry` (`SaeSpec::train_config`, validated), with the run's
/// metadata.
fn train_config(
    entry: &SaeSpec,
    d: usize,
    total_steps: u64,
    run: &RunConfig,
    source: &Source,
    hook: &str,
) -> Result<TrainConfig> {
    let mut cfg = entry.train_config(d, total_steps, run.seed)?;
    cfg.metadata = run_metadata(source, hook, entry.out_hook.clone());
    // Validated by `train_config`; the metadata takes no part in validation.
    Ok(cfg)
}
