//! What `saelab train` runs, from flags or a TOML file; written to the run folder as
//! `config.json` so that `--resume` (and anyone reading the folder) has all of it.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use saelab_sae::train::config::{BDecInit, Optimizer};
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
    pub sae: Vec<SaeEntry>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaeEntry {
    #[serde(default)]
    pub name: Option<String>,
    /// topk, batchtopk, matryoshka (BatchTopK with nested prefixes), relu (unit-norm
    /// decoder), april (L1 weighted by decoder norms), jumprelu (L0 penalty, learned
    /// thresholds) or gated.
    pub kind: String,
    pub width: usize,
    #[serde(default)]
    pub k: Option<usize>,
    /// Matryoshka's nested prefix widths (`widths=1024/4096` in `--sae`); the whole width is
    /// added as the last one when missing. Default: prefixes of 1/32, 3/32, 7/32 and 15/32.
    #[serde(default)]
    pub widths: Option<Vec<usize>>,
    /// L1 coefficient (relu, april, gated).
    #[serde(default)]
    pub l1: Option<f32>,
    /// L0 coefficient (jumprelu).
    #[serde(default)]
    pub l0: Option<f32>,
    /// Steer the sparsity coefficient during training towards this L0 (relu, april,
    /// jumprelu, gated); `l1`/`l0` is then the starting point.
    #[serde(default)]
    pub target_l0: Option<f64>,
    /// Bandwidth of JumpReLU's threshold gradient.
    #[serde(default)]
    pub bandwidth: Option<f32>,
    /// JumpReLU's initial threshold.
    #[serde(default)]
    pub threshold: Option<f32>,
    /// Ghost grads for dead latents (relu, april).
    #[serde(default)]
    pub ghost_grads: Option<bool>,
    #[serde(default)]
    pub lr: Option<f32>,
    /// Default: the run's first hook.
    #[serde(default)]
    pub hook: Option<String>,
    /// Train a transcoder that reads `hook` and predicts this hook (one of the run's hooks,
    /// of the same width), e.g. `blocks.6.ln2.hook_normalized` → `blocks.6.hook_mlp_out`.
    #[serde(default)]
    pub out_hook: Option<String>,
    /// A transcoder's linear skip connection (learned from zeros).
    #[serde(default)]
    pub skip: Option<bool>,
    #[serde(default)]
    pub dead_after_tokens: Option<u64>,
    /// Resample dead latents every this many steps (ReLU-L1 dictionaries; 0 or absent: never).
    #[serde(default)]
    pub resample_every: Option<u64>,
    /// Scale inputs to E‖x‖² = d_in (default true).
    #[serde(default)]
    pub normalize: Option<bool>,
    /// `adam` or `signum` (sign descent with schedule-free averaging).
    #[serde(default)]
    pub optimizer: Option<String>,
    /// `b_dec` at the start: `median` (geometric median of the first batch), `mean` or `zeros`.
    #[serde(default)]
    pub b_dec: Option<String>,
    /// Schedule-free sign descent's β (default 0.95).
    #[serde(default)]
    pub momentum: Option<f32>,
    /// AuxK's coefficient (topk, batchtopk, matryoshka; default 1/32).
    #[serde(default)]
    pub aux: Option<f32>,
    /// The encoder starts as the decoder's transpose times this.
    #[serde(default)]
    pub encoder_scale: Option<f32>,
    /// Steps of the linear lr warm-up.
    #[serde(default)]
    pub warmup: Option<u64>,
    /// Last steps of the run over which the lr decays linearly to 0.
    #[serde(default)]
    pub decay: Option<u64>,
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
fn default_keep_checkpoints() -> u64 {
    2
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

/// The dictionary kinds `--sae` and `[[sae]]` accept.
pub const KINDS: [&str; 7] = [
    "topk",
    "batchtopk",
    "matryoshka",
    "relu",
    "april",
    "jumprelu",
    "gated",
];
const KEYS: &str = "name, width, k, widths, out_hook, skip, l1, l0, target_l0, bandwidth, threshold, ghost_grads, lr, hook, \
                    dead_after_tokens, resample_every, normalize, optimizer, b_dec, momentum, aux, encoder_scale, warmup, decay";

/// A dictionary's name becomes a folder under the run's `final/` and `checkpoints/`: it
/// must be one plain path component, so that no name reaches outside the run folder.
pub fn check_name(name: &str) -> Result<()> {
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if name.is_empty() || name == "." || name == ".." || !name.chars().all(plain) {
        bail!("{name:?} is not a plain name (letters, digits, `-`, `_` and `.`; not `.` or `..`)");
    }
    Ok(())
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
            widths: None,
            l1: None,
            l0: None,
            target_l0: None,
            bandwidth: None,
            threshold: None,
            ghost_grads: None,
            lr: None,
            hook: None,
            out_hook: None,
            skip: None,
            dead_after_tokens: None,
            resample_every: None,
            normalize: None,
            optimizer: None,
            b_dec: None,
            momentum: None,
            aux: None,
            encoder_scale: None,
            warmup: None,
            decay: None,
        };
        for part in rest.split(',').filter(|p| !p.trim().is_empty()) {
            let (key, value) = part
                .split_once('=')
                .with_context(|| format!("--sae {spec}: `{part}` is not key=value"))?;
            let bad = |e: &dyn std::fmt::Display| anyhow::anyhow!("--sae {spec}: `{key}`: {e}");
            match key.trim() {
                "name" => {
                    check_name(value).with_context(|| format!("--sae {spec}: `name`"))?;
                    entry.name = Some(value.to_string())
                }
                "width" => entry.width = value.parse().map_err(|e| bad(&e))?,
                "k" => entry.k = Some(value.parse().map_err(|e| bad(&e))?),
                "widths" => {
                    entry.widths = Some(
                        value
                            .split('/')
                            .map(|w| w.trim().parse().map_err(|e| bad(&e)))
                            .collect::<Result<_>>()?,
                    )
                }
                "l1" => entry.l1 = Some(value.parse().map_err(|e| bad(&e))?),
                "l0" => entry.l0 = Some(value.parse().map_err(|e| bad(&e))?),
                "target_l0" => entry.target_l0 = Some(value.parse().map_err(|e| bad(&e))?),
                "bandwidth" => entry.bandwidth = Some(value.parse().map_err(|e| bad(&e))?),
                "threshold" => entry.threshold = Some(value.parse().map_err(|e| bad(&e))?),
                "ghost_grads" => entry.ghost_grads = Some(value.parse().map_err(|e| bad(&e))?),
                "lr" => entry.lr = Some(value.parse().map_err(|e| bad(&e))?),
                "hook" => entry.hook = Some(value.to_string()),
                "out_hook" => entry.out_hook = Some(value.to_string()),
                "skip" => entry.skip = Some(value.parse().map_err(|e| bad(&e))?),
                "dead_after_tokens" => {
                    entry.dead_after_tokens = Some(value.parse().map_err(|e| bad(&e))?)
                }
                "resample_every" => {
                    entry.resample_every = Some(value.parse().map_err(|e| bad(&e))?)
                }
                "normalize" => entry.normalize = Some(value.parse().map_err(|e| bad(&e))?),
                "optimizer" => entry.optimizer = Some(value.to_string()),
                "b_dec" => entry.b_dec = Some(value.to_string()),
                "momentum" => entry.momentum = Some(value.parse().map_err(|e| bad(&e))?),
                "aux" => entry.aux = Some(value.parse().map_err(|e| bad(&e))?),
                "warmup" => entry.warmup = Some(value.parse().map_err(|e| bad(&e))?),
                "decay" => entry.decay = Some(value.parse().map_err(|e| bad(&e))?),
                "encoder_scale" => entry.encoder_scale = Some(value.parse().map_err(|e| bad(&e))?),
                other => bail!("--sae {spec}: unknown key `{other}` ({KEYS})"),
            }
        }
        if entry.width == 0 {
            bail!("--sae {spec}: give `width` (number of latents)");
        }
        Ok(entry)
    }

    /// The checks that need no model: each names its field.
    pub fn check(&self) -> Result<()> {
        if let Some(name) = &self.name {
            check_name(name).context("`name`")?;
        }
        if !KINDS.contains(&self.kind.as_str()) {
            bail!("`kind`: unknown `{}` ({})", self.kind, KINDS.join(", "));
        }
        if self.width == 0 {
            bail!("`width` must be positive");
        }
        let most = saelab_sae::train::config::MAX_LATENTS;
        if self.width > most {
            bail!(
                "`width` = {} is larger than saelab's bound {most}",
                self.width
            );
        }
        match (self.kind.as_str(), self.k) {
            ("topk" | "batchtopk" | "matryoshka", None) => {
                bail!("`k` is required for {}", self.kind)
            }
            (_, Some(k)) if k == 0 || k > self.width => {
                bail!("`k` = {k} must be in 1..={} (the width)", self.width)
            }
            _ => {}
        }
        if let Some(widths) = &self.widths {
            if widths.is_empty()
                || widths[0] == 0
                || widths.windows(2).any(|w| w[0] >= w[1])
                || widths[widths.len() - 1] > self.width
            {
                bail!(
                    "`widths` = {widths:?} must be strictly increasing prefix widths in 1..={} \
                     (the width)",
                    self.width
                );
            }
        }
        self.optimizer()?;
        self.b_dec_init()?;
        if let Some(lr) = self.lr.filter(|lr| !(lr.is_finite() && *lr > 0.0)) {
            bail!("`lr` = {lr} must be positive");
        }
        for (key, value) in [("l1", self.l1), ("l0", self.l0)] {
            if let Some(v) = value.filter(|v| !(v.is_finite() && *v >= 0.0)) {
                bail!("`{key}` = {v} must be zero or positive");
            }
        }
        if let Some(t) = self.target_l0 {
            if !(t.is_finite() && t > 0.0 && t <= self.width as f64) {
                bail!(
                    "`target_l0` = {t} must be in (0, {}] (the width)",
                    self.width
                );
            }
        }
        for (key, value) in [("bandwidth", self.bandwidth), ("threshold", self.threshold)] {
            if let Some(v) = value.filter(|v| !(v.is_finite() && *v > 0.0)) {
                bail!("`{key}` = {v} must be positive");
            }
        }
        // Keys that the kind would silently ignore are mistakes.
        let kind = self.kind.as_str();
        let only = [
            (
                "k",
                self.k.is_some(),
                &["topk", "batchtopk", "matryoshka"][..],
            ),
            ("widths", self.widths.is_some(), &["matryoshka"][..]),
            ("l1", self.l1.is_some(), &["relu", "april", "gated"][..]),
            ("l0", self.l0.is_some(), &["jumprelu"][..]),
            (
                "target_l0",
                self.target_l0.is_some(),
                &["relu", "april", "jumprelu", "gated"][..],
            ),
            ("bandwidth", self.bandwidth.is_some(), &["jumprelu"][..]),
            ("threshold", self.threshold.is_some(), &["jumprelu"][..]),
            (
                "ghost_grads",
                self.ghost_grads.is_some(),
                &["relu", "april"][..],
            ),
            (
                "aux",
                self.aux.is_some(),
                &["topk", "batchtopk", "matryoshka"][..],
            ),
        ];
        if self.skip.is_some() && self.out_hook.is_none() {
            bail!("`skip` applies to transcoders only (give `out_hook`)");
        }
        if self.out_hook.is_some() {
            if kind == "gated" {
                bail!("`out_hook`: gated transcoders are not supported (no peer stores them)");
            }
            for (key, given) in [
                ("ghost_grads", self.ghost_grads.is_some()),
                ("resample_every", self.resample_every.is_some()),
            ] {
                if given {
                    bail!("`{key}` does not apply to transcoders");
                }
            }
            if self.out_hook == self.hook {
                bail!("`out_hook` is the hook the transcoder reads: give another one");
            }
        }
        if self.momentum.is_some() && self.optimizer()? != Some(Optimizer::Signum) {
            bail!("`momentum` applies to `optimizer=signum` only");
        }
        for (key, given, kinds) in only {
            if given && !kinds.contains(&kind) {
                bail!(
                    "`{key}` does not apply to {kind} (only to {})",
                    kinds.join(", ")
                );
            }
        }
        Ok(())
    }

    /// The `optimizer` key, if given.
    pub fn optimizer(&self) -> Result<Option<Optimizer>> {
        self.optimizer
            .as_deref()
            .map(|o| match o {
                "adam" => Ok(Optimizer::Adam),
                "signum" => Ok(Optimizer::Signum),
                other => bail!("`optimizer`: unknown `{other}` (adam, signum)"),
            })
            .transpose()
    }

    /// The `b_dec` key, if given.
    pub fn b_dec_init(&self) -> Result<Option<BDecInit>> {
        self.b_dec
            .as_deref()
            .map(|o| match o {
                "median" => Ok(BDecInit::GeometricMedian),
                "mean" => Ok(BDecInit::Mean),
                "zeros" => Ok(BDecInit::Zeros),
                other => bail!("`b_dec`: unknown `{other}` (median, mean, zeros)"),
            })
            .transpose()
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
            if let Some(l0) = self.l0 {
                s.push_str(&format!("-l0_{l0}"));
            }
            if let Some(t) = self.target_l0 {
                s.push_str(&format!("-target{t}"));
            }
            if self.out_hook.is_some() {
                s.push_str(match self.skip {
                    Some(true) => "-skip-transcoder",
                    _ => "-transcoder",
                });
            }
            s
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_plain_path_components() {
        for good in ["a", "topk-64", "run_1.k8", "..a", "a..b"] {
            check_name(good).unwrap();
        }
        for bad in [
            "", ".", "..", "../x", "../../x", "/tmp/x", "a/b", "a\\b", "x\0", "é", " a", "a:b",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?} accepted");
        }
        let err = SaeEntry::parse("topk:k=4,width=64,name=../../x").unwrap_err();
        assert!(format!("{err:#}").contains("`name`"), "{err:#}");
        let mut entry = SaeEntry::parse("topk:k=4,width=64").unwrap();
        entry.name = Some("/abs".into());
        assert!(entry.check().is_err(), "a TOML name is checked too");
    }
}

#[cfg(test)]
mod optimiser_keys {
    use super::*;

    #[test]
    fn unknown_values_are_refused_naming_the_key() {
        let entry = SaeEntry::parse("topk:k=4,width=64,optimizer=signum,b_dec=mean").unwrap();
        entry.check().unwrap();
        assert_eq!(entry.optimizer().unwrap(), Some(Optimizer::Signum));
        assert_eq!(entry.b_dec_init().unwrap(), Some(BDecInit::Mean));
        for (spec, key) in [
            ("topk:k=4,width=64,optimizer=sgd", "`optimizer`"),
            ("topk:k=4,width=64,b_dec=median2", "`b_dec`"),
        ] {
            let msg = format!("{:#}", SaeEntry::parse(spec).unwrap().check().unwrap_err());
            assert!(msg.contains(key), "{spec}: {msg}");
        }
        let msg = format!(
            "{:#}",
            SaeEntry::parse("topk:k=4,width=64,warmup=-1").unwrap_err()
        );
        assert!(msg.contains("`warmup`"), "{msg}");
        SaeEntry::parse("jumprelu:width=64,target_l0=16")
            .unwrap()
            .check()
            .unwrap();
        let m = SaeEntry::parse("matryoshka:k=4,width=64,widths=8/ 24").unwrap();
        m.check().unwrap();
        assert_eq!(m.widths, Some(vec![8, 24]));
        for (spec, key) in [
            ("matryoshka:k=4,width=64,widths=8/x", "`widths`"),
            ("matryoshka:k=4,width=64,widths=", "`widths`"),
        ] {
            let msg = format!("{:#}", SaeEntry::parse(spec).unwrap_err());
            assert!(msg.contains(key), "{spec}: {msg}");
        }
        for (spec, key) in [
            ("matryoshka:width=64", "`k`"),
            ("matryoshka:k=4,width=64,widths=24/8", "`widths`"),
            ("matryoshka:k=4,width=64,widths=0/8", "`widths`"),
            ("matryoshka:k=4,width=64,widths=8/65", "`widths`"),
            ("batchtopk:k=4,width=64,widths=8", "`widths`"),
            ("topk:k=4,width=64,momentum=0.9", "`momentum`"),
            ("relu:width=64,aux=0.1", "`aux`"),
            ("topk:k=4,width=64,target_l0=4", "`target_l0`"),
            ("relu:width=64,target_l0=0", "`target_l0`"),
            ("gated:width=64,target_l0=65", "`target_l0`"),
        ] {
            let msg = format!("{:#}", SaeEntry::parse(spec).unwrap().check().unwrap_err());
            assert!(msg.contains(key), "{spec}: {msg}");
        }
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
        for width in ["268435457", "1000000000000", "18446744073709551615"] {
            let entry = SaeEntry::parse(&format!("topk:k=4,width={width}")).unwrap();
            let msg = format!("{:#}", entry.check().unwrap_err());
            assert!(msg.contains("`width`"), "{width}: {msg}");
        }
    }
}
