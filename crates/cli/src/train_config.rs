//! What `saelab train` runs, from flags or a TOML file; written to the run folder as
//! `config.json` so that `--resume` (and anyone reading the folder) has all of it.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default = "default_corpus")]
    pub corpus: String,
    /// Read activations from this harvest instead of running the model.
    #[serde(default)]
    pub cache: Option<PathBuf>,
    #[serde(default = "default_hooks")]
    pub hooks: Vec<String>,
    /// Training tokens (default: all of the cache but the held-out windows).
    #[serde(default)]
    pub tokens: Option<u64>,
    #[serde(default = "default_ctx")]
    pub ctx: usize,
    #[serde(default = "default_batch")]
    pub batch: usize,
    #[serde(default = "default_buffer_mib")]
    pub buffer_mib: usize,
    #[serde(default)]
    pub seed: u64,
    #[serde(default = "default_checkpoint_every")]
    pub checkpoint_every: u64,
    #[serde(default = "default_log_every")]
    pub log_every: u64,
    /// The cache's last windows, kept out of training and evaluated at the end.
    #[serde(default)]
    pub holdout_windows: u64,
    /// Also fit PCA with this many components on the training tokens (first hook) and
    /// evaluate it on the held-out windows, as the linear baseline.
    #[serde(default)]
    pub pca: Option<usize>,
    pub sae: Vec<SaeEntry>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaeEntry {
    #[serde(default)]
    pub name: Option<String>,
    /// topk, batchtopk, relu (unit-norm decoder) or april (L1 weighted by decoder norms).
    pub kind: String,
    pub width: usize,
    #[serde(default)]
    pub k: Option<usize>,
    #[serde(default)]
    pub l1: Option<f32>,
    #[serde(default)]
    pub lr: Option<f32>,
    /// Default: the run's first hook.
    #[serde(default)]
    pub hook: Option<String>,
    #[serde(default)]
    pub dead_after_tokens: Option<u64>,
    /// Resample dead latents every this many steps (ReLU-L1 dictionaries; 0 or absent: never).
    #[serde(default)]
    pub resample_every: Option<u64>,
    /// Scale inputs to E‖x‖² = d_in (default true).
    #[serde(default)]
    pub normalize: Option<bool>,
}

fn default_corpus() -> String {
    "default".into()
}
fn default_hooks() -> Vec<String> {
    vec!["blocks.6.hook_resid_post".into()]
}
fn default_ctx() -> usize {
    saelab_data::DEFAULT_WINDOW_LEN
}
fn default_batch() -> usize {
    4096
}
fn default_buffer_mib() -> usize {
    1024
}
fn default_checkpoint_every() -> u64 {
    500
}
fn default_log_every() -> u64 {
    10
}

impl RunConfig {
    pub fn from_toml(path: &std::path::Path) -> Result<RunConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("--config {}", path.display()))?;
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("--config {}: {e}", path.display()))
    }

    pub fn check(&self) -> Result<()> {
        if self.sae.is_empty() {
            bail!("give at least one dictionary (--sae topk:k=32,width=16384)");
        }
        for (field, value) in [
            ("ctx", self.ctx),
            ("batch", self.batch),
            ("buffer_mib", self.buffer_mib),
        ] {
            if value == 0 {
                bail!("`{field}` must be positive");
            }
        }
        if self.hooks.is_empty() {
            bail!("`hooks` is empty");
        }
        for (i, entry) in self.sae.iter().enumerate() {
            entry
                .check()
                .with_context(|| format!("dictionary {}", entry.label(i)))?;
        }
        Ok(())
    }
}

impl SaeEntry {
    /// Parses `kind:key=value,key=value`, e.g. `topk:k=32,width=16384,lr=2e-4`.
    pub fn parse(spec: &str) -> Result<SaeEntry> {
        let (kind, rest) = spec.split_once(':').unwrap_or((spec, ""));
        let mut entry = SaeEntry {
            name: None,
            kind: kind.trim().to_string(),
            width: 0,
            k: None,
            l1: None,
            lr: None,
            hook: None,
            dead_after_tokens: None,
            resample_every: None,
            normalize: None,
        };
        for part in rest.split(',').filter(|p| !p.trim().is_empty()) {
            let (key, value) = part
                .split_once('=')
                .with_context(|| format!("--sae {spec}: `{part}` is not key=value"))?;
            let bad = |e: &dyn std::fmt::Display| anyhow::anyhow!("--sae {spec}: `{key}`: {e}");
            match key.trim() {
                "name" => entry.name = Some(value.to_string()),
                "width" => entry.width = value.parse().map_err(|e| bad(&e))?,
                "k" => entry.k = Some(value.parse().map_err(|e| bad(&e))?),
                "l1" => entry.l1 = Some(value.parse().map_err(|e| bad(&e))?),
                "lr" => entry.lr = Some(value.parse().map_err(|e| bad(&e))?),
                "hook" => entry.hook = Some(value.to_string()),
                "dead_after_tokens" => {
                    entry.dead_after_tokens = Some(value.parse().map_err(|e| bad(&e))?)
                }
                "resample_every" => {
                    entry.resample_every = Some(value.parse().map_err(|e| bad(&e))?)
                }
                "normalize" => entry.normalize = Some(value.parse().map_err(|e| bad(&e))?),
                other => bail!(
                    "--sae {spec}: unknown key `{other}` (name, width, k, l1, lr, hook, \
                     dead_after_tokens, resample_every, normalize)"
                ),
            }
        }
        if entry.width == 0 {
            bail!("--sae {spec}: give `width` (number of latents)");
        }
        Ok(entry)
    }

    /// The checks that need no model: each names its field.
    pub fn check(&self) -> Result<()> {
        if !["topk", "batchtopk", "relu", "april"].contains(&self.kind.as_str()) {
            bail!(
                "`kind`: unknown `{}` (topk, batchtopk, relu, april)",
                self.kind
            );
        }
        if self.width == 0 {
            bail!("`width` must be positive");
        }
        match (self.kind.as_str(), self.k) {
            ("topk" | "batchtopk", None) => bail!("`k` is required for {}", self.kind),
            (_, Some(k)) if k == 0 || k > self.width => {
                bail!("`k` = {k} must be in 1..={} (the width)", self.width)
            }
            _ => {}
        }
        if let Some(lr) = self.lr.filter(|lr| !(lr.is_finite() && *lr > 0.0)) {
            bail!("`lr` = {lr} must be positive");
        }
        if let Some(l1) = self.l1.filter(|l1| !(l1.is_finite() && *l1 >= 0.0)) {
            bail!("`l1` = {l1} must be zero or positive");
        }
        Ok(())
    }

    pub fn label(&self, index: usize) -> String {
        self.name.clone().unwrap_or_else(|| {
            let mut s = format!("{index}-{}-{}", self.kind, self.width);
            if let Some(k) = self.k {
                s.push_str(&format!("-k{k}"));
            }
            if let Some(l1) = self.l1 {
                s.push_str(&format!("-l1_{l1}"));
            }
            s
        })
    }
}
