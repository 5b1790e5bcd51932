//! What a training run does, from `saelab train`'s flags, a TOML file or a library caller;
//! written to the run folder as `config.json` so that a resume (and anyone reading the
//! folder) has all of it.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use saelab_sae::SaeSpec;
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
    #[serde(default = "default_hooks_of_model")]
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
    /// The newest checkpoints kept (older ones are removed unless they hold a `keep` file).
    #[serde(default = "default_keep_checkpoints")]
    pub keep_checkpoints: u64,
    #[serde(default = "default_log_every")]
    pub log_every: u64,
    /// The cache's last windows, kept out of training and evaluated at the end.
    #[serde(default)]
    pub holdout_windows: u64,
    /// Also fit PCA with this many components on the training tokens (first hook) and
    /// evaluate it on the held-out windows, as the linear baseline.
    #[serde(default)]
    pub pca: Option<usize>,
    /// Also fit ICA (FastICA) with this many components on the first training rows (first
    /// hook), saved under `baselines/` and evaluated on the held-out windows.
    #[serde(default)]
    pub ica: Option<usize>,
    /// Tokens between density snapshots (`snapshots/`); 0: none; absent: about
    /// `DEFAULT_SNAPSHOTS` over the run.
    #[serde(default)]
    pub snapshot_every: Option<u64>,
    /// The dictionaries, with the keys of `--sae` specs (`saelab_sae::SaeSpec`).
    pub sae: Vec<SaeSpec>,
}

/// Density snapshots per run when `snapshot_every` is not given.
pub const DEFAULT_SNAPSHOTS: u64 = 32;

fn default_corpus() -> String {
    "default".into()
}
fn default_hooks_of_model() -> Vec<String> {
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
fn default_keep_checkpoints() -> u64 {
    2
}
fn default_log_every() -> u64 {
    10
}

/// The hooks of a run that names none: a cache's hook when it holds one, else
/// blocks.6.hook_resid_post. A cache of several hooks needs them named (`flag` says how). An
/// unreadable cache is reported where the run opens it.
pub fn default_hooks(cache: Option<&std::path::Path>, flag: &str) -> Result<Vec<String>> {
    let Some(dir) = cache else {
        return Ok(default_hooks_of_model());
    };
    let Ok(cache) = saelab_data::cache::ActivationCache::open(dir) else {
        return Ok(default_hooks_of_model());
    };
    let names: Vec<String> = cache
        .manifest
        .spec
        .hooks
        .iter()
        .map(|h| h.name.clone())
        .collect();
    match names.as_slice() {
        [one] => Ok(vec![one.clone()]),
        _ => bail!(
            "{flag}: the cache {} holds {} hooks ({}): name the one(s) to train on",
            dir.display(),
            names.len(),
            names.join(", ")
        ),
    }
}

impl RunConfig {
    pub fn from_toml(path: &std::path::Path) -> Result<RunConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("--config {}", path.display()))?;
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("--config {}: {e}", path.display()))
    }

    /// Steps between density snapshots (0: none) for a run of `total_steps`.
    pub fn snapshot_steps(&self, total_steps: u64) -> u64 {
        match self.snapshot_every {
            Some(0) => 0,
            Some(tokens) => tokens.div_ceil(self.batch.max(1) as u64).max(1),
            None => total_steps.div_ceil(DEFAULT_SNAPSHOTS).max(1),
        }
    }

    /// `buffer_mib` in bytes, refused where it does not fit in a `usize`.
    pub fn buffer_bytes(&self) -> Result<usize> {
        self.buffer_mib
            .checked_mul(1 << 20)
            .with_context(|| format!("`buffer_mib` = {} overflows", self.buffer_mib))
    }

    pub fn check(&self) -> Result<()> {
        if self.sae.is_empty() {
            bail!("give at least one dictionary (--sae topk:k=32,width=16384)");
        }
        if self.pca == Some(0) {
            bail!("`pca` = 0: the PCA baseline needs at least one component");
        }
        if self.ica == Some(0) {
            bail!("`ica` = 0: the ICA baseline needs at least one component");
        }
        for (field, value) in [
            ("ctx", self.ctx as u64),
            ("batch", self.batch as u64),
            ("buffer_mib", self.buffer_mib as u64),
            ("checkpoint_every", self.checkpoint_every),
            ("keep_checkpoints", self.keep_checkpoints),
            ("log_every", self.log_every),
        ] {
            if value == 0 {
                bail!("`{field}` must be positive");
            }
        }
        let buffer_bytes = self.buffer_bytes()?;
        if let Some(total) =
            saelab_data::activations::buffer::physical_memory().filter(|&m| buffer_bytes as u64 > m)
        {
            bail!(
                "`buffer_mib` = {} is more than this machine's {} MiB of memory",
                self.buffer_mib,
                total >> 20
            );
        }
        if self.hooks.is_empty() {
            bail!("`hooks` is empty");
        }
        saelab_data::activations::check_distinct_hooks(&self.hooks).context("`hooks`")?;
        for (i, entry) in self.sae.iter().enumerate() {
            entry
                .check()
                .with_context(|| format!("dictionary {}", entry.label(i)))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod bad_sizes {
    use super::*;

    fn config(extra: &str) -> Result<RunConfig> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("run.toml");
        std::fs::write(
            &path,
            format!("{extra}\n[[sae]]\nkind = \"topk\"\nwidth = 64\nk = 4\n"),
        )?;
        RunConfig::from_toml(&path)
    }

    fn refusal(extra: &str) -> String {
        let err = config(extra)
            .and_then(|c| c.check())
            .expect_err(&format!("{extra:?} accepted"));
        format!("{err:#}")
    }

    /// A zero period used to divide by zero in the run loop, after the run folder was made.
    #[test]
    fn zero_periods_are_refused_naming_the_key() {
        config("").unwrap().check().unwrap();
        for key in [
            "checkpoint_every",
            "keep_checkpoints",
            "log_every",
            "ctx",
            "batch",
            "buffer_mib",
        ] {
            let msg = refusal(&format!("{key} = 0"));
            assert!(msg.contains(&format!("`{key}`")), "{key}: {msg}");
        }
    }

    #[test]
    fn repeated_hooks_are_refused_naming_the_hook() {
        for hooks in [
            r#"["blocks.0.hook_resid_post", "blocks.0.hook_resid_post"]"#,
            r#"["a", "b", "a"]"#,
            r#"["b", "a", "b", "b"]"#,
        ] {
            let msg = refusal(&format!("hooks = {hooks}"));
            assert!(
                msg.contains("`hooks`") && msg.contains("more than once"),
                "{hooks}: {msg}"
            );
        }
    }

    #[test]
    fn huge_sizes_are_refused_before_allocating() {
        for mib in [100_000_000i64, 1 << 44, 1 << 50, i64::MAX] {
            let msg = refusal(&format!("buffer_mib = {mib}"));
            assert!(msg.contains("`buffer_mib`"), "{mib}: {msg}");
        }
        for width in ["268435457", "1000000000000"] {
            let msg = refusal(&format!(
                "[[sae]]\nkind = \"topk\"\nwidth = {width}\nk = 4\n"
            ));
            assert!(msg.contains("`width`"), "{width}: {msg}");
        }
    }
}
