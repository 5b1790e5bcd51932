//! saelab-train: training runs. A run folder is made from a [`RunConfig`] (the dictionaries as
//! [`saelab_sae::SaeSpec`]s, the activation source, the batch and schedule): many dictionaries
//! trained from one stream of activations, checkpoints that resume exactly, `metrics.jsonl`,
//! the held-out evaluation with the PCA baseline, `summary.json` and the HTML report. The
//! `saelab train` command is this crate behind flags; a library caller trains exactly as it
//! does (a test trains the same run both ways and compares the bytes).
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! use saelab_train::{train, Outcome, Quiet, RunConfig, Start};
//! let run: RunConfig = toml::from_str(
//!     r#"
//!     cache = "cache/l6"
//!     holdout_windows = 1024
//!     [[sae]]
//!     kind = "topk"
//!     width = 16384
//!     k = 32
//! "#,
//! )?;
//! let stop = std::sync::atomic::AtomicBool::new(false); // set it to stop after a checkpoint
//! let start = Start::Fresh(Box::new(run));
//! if let Outcome::Finished(run) = train("runs/l6".as_ref(), start, &mut Quiet, &stop)? {
//!     println!("{}", run.summary["holdout"]);
//! }
//! // One dictionary by hand: the spec's config for 576-wide inputs and a 1,000-step run.
//! let cfg = saelab_sae::SaeSpec::parse("topk:k=32,width=16384")?.train_config(576, 1000, 0)?;
//! let trainer = saelab_sae::Trainer::new(cfg)?; // trainer.step(&batch)?, trainer.dictionary()
//! # Ok(())
//! # }
//! ```

pub mod baselines;
pub mod config;
pub mod contextual;
pub mod contextual_spec;
pub mod e2e;
pub mod files;
pub mod folder;
pub mod holdout;
pub mod run;
pub mod snapshots;
pub mod source;

use std::path::Path;

use anyhow::{Context, Result};
use saelab_sae::StepStats;

pub use config::RunConfig;
pub use run::{train, Finished, Outcome, Start};
pub use source::Source;

/// What a run tells its caller as it goes: progress, and warnings that do not stop it. Every
/// method has a default: warnings to stderr, progress nowhere.
pub trait Observer {
    /// A warning the run continues after (the data ended early, an unfinished harvest).
    fn warn(&mut self, message: &str) {
        eprintln!("warning: {message}");
    }

    /// What the run is doing, worth a line (resuming from a checkpoint).
    fn note(&mut self, message: &str) {
        eprintln!("{message}");
    }

    /// Resuming: `done` of the `total` steps before the checkpoint have been replayed.
    fn replayed(&mut self, _done: u64, _total: u64) {}

    /// Training starts (or resumes) after `done` of `total` steps; the first batch may take a
    /// while (the shuffling buffer fills first).
    fn started(&mut self, _done: u64, _total: u64) {}

    /// Step `step` (1-based) of `total` was taken, with each dictionary's statistics.
    fn stepped(&mut self, _step: u64, _total: u64, _stats: &[StepStats]) {}

    /// The steps are over; the held-out evaluation and the report follow.
    fn trained(&mut self) {}
}

/// Warnings to stderr, no progress.
pub struct Quiet;

impl Observer for Quiet {}

/// Writes `bytes` to `path` through a temporary file renamed into place.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    saelab_data::cache::manifest::write_atomically(path, bytes)
        .with_context(|| format!("writing {}", path.display()))
}
