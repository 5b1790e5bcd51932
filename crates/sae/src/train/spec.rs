//! Dictionary specs as users write them: `topk:k=32,width=16384,lr=2e-4` on the command line,
//! the same keys in a TOML `[[sae]]` table or from Python. Parsed, checked and turned into a
//! [`TrainConfig`] here, once, so that every way in trains with the same defaults. The kinds
//! and the keys each takes come from the architectures' registry (`arch/mod.rs`).

use serde::{Deserialize, Serialize};

use super::arch::{SpecKind, SPEC_KINDS};
use super::config::{BDecInit, Optimizer, TrainConfig, MAX_LATENTS};
use crate::error::{Result, SaeError};

/// The L0 a penalised kind aims at when given neither a coefficient nor `target_l0` (at
/// most width/8).
pub const DEFAULT_TARGET_L0: usize = 64;

/// One dictionary to train, as a spec gives it: every key but `kind` and `width` optional,
/// the architecture's default where absent.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaeSpec {
    /// Folder name of the dictionary in a run (default: from its kind and keys).
    #[serde(default)]
    pub name: Option<String>,
    /// One of [`kind_names`]: topk, batchtopk, matryoshka, relu, april, jumprelu, gated.
    pub kind: String,
    pub width: usize,
    #[serde(default)]
    pub k: Option<usize>,
    /// Matryoshka's nested prefix widths (`widths=1024/4096` in a spec); the whole width is
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
    /// The hook it reads (default: the run's first).
    #[serde(default)]
    pub hook: Option<String>,
    /// Train a transcoder that reads `hook` and predicts this hook (of the same width), e.g.
    /// `blocks.6.ln2.hook_normalized` → `blocks.6.hook_mlp_out`.
    #[serde(default)]
    pub out_hook: Option<String>,
    /// A transcoder's linear skip connection (learned from zeros).
    #[serde(default)]
    pub skip: Option<bool>,
    #[serde(default)]
    pub dead_after_tokens: Option<u64>,
    /// Resample dead latents every this many steps (0 or absent: never).
    #[serde(default)]
    pub resample_every: Option<u64>,
    /// The share of latents kept out of resampling as a control set (default 0).
    #[serde(default)]
    pub control: Option<f64>,
    /// Keep the control set out of AuxK and ghost grads too (default false).
    #[serde(default)]
    pub control_aux: Option<bool>,
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
    /// Steps of the sparsity penalty's linear warm-up (relu, april, jumprelu, gated;
    /// default 1/20 of the run).
    #[serde(default)]
    pub penalty_warmup: Option<u64>,
    /// Steps of the auxiliary loss's linear warm-up (AuxK, ghost grads, Gated's auxiliary
    /// reconstruction; default 0).
    #[serde(default)]
    pub aux_warmup: Option<u64>,
    /// TopK's firing floor: the least share of a batch's tokens each latent fires on
    /// (default 0: off; `floor.rs` says when it helps and when it hurts).
    #[serde(default)]
    pub min_density: Option<f64>,
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

/// The keys every kind takes; the others belong to some kinds only (`SpecKind::keys`).
pub const COMMON_KEYS: [&str; 17] = [
    "name",
    "width",
    "lr",
    "hook",
    "out_hook",
    "skip",
    "dead_after_tokens",
    "resample_every",
    "control",
    "control_aux",
    "normalize",
    "optimizer",
    "b_dec",
    "momentum",
    "encoder_scale",
    "warmup",
    "decay",
];

/// The kinds a spec may name, in the registry's order.
pub fn kind_names() -> Vec<&'static str> {
    SPEC_KINDS.iter().map(|k| k.name).collect()
}

/// Every key a spec may hold (but `kind`, which comes before the colon).
pub fn key_names() -> Vec<&'static str> {
    let mut keys = COMMON_KEYS.to_vec();
    for kind in &SPEC_KINDS {
        for key in kind.keys {
            if !keys.contains(key) {
                keys.push(key);
            }
        }
    }
    keys
}

/// A dictionary's name becomes a folder under a run's `final/` and `checkpoints/`: it must
/// be one plain path component, so that no name reaches outside the run folder.
pub fn check_name(name: &str) -> Result<()> {
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if name.is_empty() || name == "." || name == ".." || !name.chars().all(plain) {
        return Err(SaeError::Spec(format!(
            "{name:?} is not a plain name (letters, digits, `-`, `_` and `.`; not `.` or `..`)"
        )));
    }
    Ok(())
}

fn spec_error(message: impl Into<String>) -> SaeError {
    SaeError::Spec(message.into())
}

/// `value` parsed for `key`, or an error naming the key.
fn parsed<T: std::str::FromStr>(key: &str, value: &str) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    value
        .trim()
        .parse()
        .map_err(|e| spec_error(format!("`{key}`: {e}")))
}

/// `*slot = value` where a key gave one; the default stays otherwise.
fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *slot = v;
    }
}

impl SaeSpec {
    /// Parses `kind:key=value,key=value`, e.g. `topk:k=32,width=16384,lr=2e-4`. Errors name
    /// the key; `check` makes the checks that need the whole spec.
    pub fn parse(spec: &str) -> Result<SaeSpec> {
        let (kind, rest) = spec.split_once(':').unwrap_or((spec, ""));
        let mut entry = SaeSpec {
            kind: kind.trim().to_string(),
            ..SaeSpec::default()
        };
        for part in rest.split(',').filter(|p| !p.trim().is_empty()) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| spec_error(format!("`{part}` is not key=value")))?;
            let key = key.trim();
            match key {
                "name" => {
                    check_name(value).map_err(|e| spec_error(format!("`name`: {e}")))?;
                    entry.name = Some(value.to_string())
                }
                "width" => entry.width = parsed(key, value)?,
                "k" => entry.k = Some(parsed(key, value)?),
                "widths" => {
                    entry.widths = Some(
                        value
                            .split('/')
                            .map(|w| parsed(key, w))
                            .collect::<Result<_>>()?,
                    )
                }
                "l1" => entry.l1 = Some(parsed(key, value)?),
                "l0" => entry.l0 = Some(parsed(key, value)?),
                "target_l0" => entry.target_l0 = Some(parsed(key, value)?),
                "bandwidth" => entry.bandwidth = Some(parsed(key, value)?),
                "threshold" => entry.threshold = Some(parsed(key, value)?),
                "ghost_grads" => entry.ghost_grads = Some(parsed(key, value)?),
                "lr" => entry.lr = Some(parsed(key, value)?),
                "hook" => entry.hook = Some(value.to_string()),
                "out_hook" => entry.out_hook = Some(value.to_string()),
                "skip" => entry.skip = Some(parsed(key, value)?),
                "dead_after_tokens" => entry.dead_after_tokens = Some(parsed(key, value)?),
                "resample_every" => entry.resample_every = Some(parsed(key, value)?),
                "control" => entry.control = Some(parsed(key, value)?),
                "control_aux" => entry.control_aux = Some(parsed(key, value)?),
                "normalize" => entry.normalize = Some(parsed(key, value)?),
                "optimizer" => entry.optimizer = Some(value.to_string()),
                "b_dec" => entry.b_dec = Some(value.to_string()),
                "momentum" => entry.momentum = Some(parsed(key, value)?),
                "aux" => entry.aux = Some(parsed(key, value)?),
                "min_density" => entry.min_density = Some(parsed(key, value)?),
                "penalty_warmup" => entry.penalty_warmup = Some(parsed(key, value)?),
                "aux_warmup" => entry.aux_warmup = Some(parsed(key, value)?),
                "warmup" => entry.warmup = Some(parsed(key, value)?),
                "decay" => entry.decay = Some(parsed(key, value)?),
                "encoder_scale" => entry.encoder_scale = Some(parsed(key, value)?),
                other => {
                    return Err(spec_error(format!(
                        "unknown key `{other}` ({})",
                        key_names().join(", ")
                    )))
                }
            }
        }
        if entry.width == 0 {
            return Err(spec_error("give `width` (number of latents)"));
        }
        Ok(entry)
    }

    /// The registry's entry for this spec's kind.
    pub fn spec_kind(&self) -> Result<&'static SpecKind> {
        SPEC_KINDS
            .iter()
            .find(|k| k.name == self.kind)
            .ok_or_else(|| {
                spec_error(format!(
                    "`kind`: unknown `{}` ({})",
                    self.kind,
                    kind_names().join(", ")
                ))
            })
    }

    /// The checks that need no model or data: each names its key.
    pub fn check(&self) -> Result<()> {
        if let Some(name) = &self.name {
            check_name(name).map_err(|e| spec_error(format!("`name`: {e}")))?;
        }
        let kind = self.spec_kind()?;
        if self.width == 0 {
            return Err(spec_error("`width` must be positive"));
        }
        if self.width > MAX_LATENTS {
            return Err(spec_error(format!(
                "`width` = {} is larger than saelab's bound {MAX_LATENTS}",
                self.width
            )));
        }
        match (kind.keys.contains(&"k"), self.k) {
            (true, None) => return Err(spec_error(format!("`k` is required for {}", kind.name))),
            (_, Some(k)) if k == 0 || k > self.width => {
                return Err(spec_error(format!(
                    "`k` = {k} must be in 1..={} (the width)",
                    self.width
                )))
            }
            _ => {}
        }
        self.check_own_keys(kind)?;
        if let Some(widths) = &self.widths {
            if widths.is_empty()
                || widths[0] == 0
                || widths.windows(2).any(|w| w[0] >= w[1])
                || widths[widths.len() - 1] > self.width
            {
                return Err(spec_error(format!(
                    "`widths` = {widths:?} must be strictly increasing prefix widths in 1..={} \
                     (the width)",
                    self.width
                )));
            }
        }
        self.optimizer()?;
        self.b_dec_init()?;
        if let Some(lr) = self.lr.filter(|lr| !(lr.is_finite() && *lr > 0.0)) {
            return Err(spec_error(format!("`lr` = {lr} must be positive")));
        }
        for (key, value) in [("l1", self.l1), ("l0", self.l0)] {
            if let Some(v) = value.filter(|v| !(v.is_finite() && *v >= 0.0)) {
                return Err(spec_error(format!(
                    "`{key}` = {v} must be zero or positive"
                )));
            }
        }
        if let Some(t) = self.target_l0 {
            if !(t.is_finite() && t > 0.0 && t <= self.width as f64) {
                return Err(spec_error(format!(
                    "`target_l0` = {t} must be in (0, {}] (the width)",
                    self.width
                )));
            }
        }
        if let Some(m) = self.min_density {
            if !(m.is_finite() && (0.0..=1.0).contains(&m)) {
                return Err(spec_error(format!("`min_density` = {m} must be in [0, 1]")));
            }
        }
        for (key, value) in [("bandwidth", self.bandwidth), ("threshold", self.threshold)] {
            if let Some(v) = value.filter(|v| !(v.is_finite() && *v > 0.0)) {
                return Err(spec_error(format!("`{key}` = {v} must be positive")));
            }
        }
        self.check_transcoder()?;
        if self.momentum.is_some() && self.optimizer()? != Some(Optimizer::Signum) {
            return Err(spec_error("`momentum` applies to `optimizer=signum` only"));
        }
        Ok(())
    }

    /// Keys that the kind would silently ignore are mistakes: each key that is not common
    /// must be one of the kind's own.
    fn check_own_keys(&self, kind: &SpecKind) -> Result<()> {
        let given = [
            ("k", self.k.is_some()),
            ("widths", self.widths.is_some()),
            ("l1", self.l1.is_some()),
            ("l0", self.l0.is_some()),
            ("target_l0", self.target_l0.is_some()),
            ("bandwidth", self.bandwidth.is_some()),
            ("threshold", self.threshold.is_some()),
            ("ghost_grads", self.ghost_grads.is_some()),
            ("aux", self.aux.is_some()),
            ("min_density", self.min_density.is_some()),
            ("penalty_warmup", self.penalty_warmup.is_some()),
            ("aux_warmup", self.aux_warmup.is_some()),
        ];
        let stray = given
            .iter()
            .find(|(key, given)| *given && !kind.keys.contains(key));
        if let Some((key, _)) = stray {
            let owners: Vec<&str> = SPEC_KINDS
                .iter()
                .filter(|k| k.keys.contains(key))
                .map(|k| k.name)
                .collect();
            return Err(spec_error(format!(
                "`{key}` does not apply to {} (only to {})",
                kind.name,
                owners.join(", ")
            )));
        }
        Ok(())
    }

    fn check_transcoder(&self) -> Result<()> {
        if self.skip.is_some() && self.out_hook.is_none() {
            return Err(spec_error(
                "`skip` applies to transcoders only (give `out_hook`)",
            ));
        }
        if self.out_hook.is_none() {
            return Ok(());
        }
        if self.kind == "gated" {
            return Err(spec_error(
                "`out_hook`: gated transcoders are not supported (no peer stores them)",
            ));
        }
        for (key, given) in [
            ("ghost_grads", self.ghost_grads.is_some()),
            ("resample_every", self.resample_every.is_some()),
        ] {
            if given {
                return Err(spec_error(format!("`{key}` does not apply to transcoders")));
            }
        }
        if self.out_hook == self.hook {
            return Err(spec_error(
                "`out_hook` is the hook the transcoder reads: give another one",
            ));
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
                other => Err(spec_error(format!(
                    "`optimizer`: unknown `{other}` (adam, signum)"
                ))),
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
                other => Err(spec_error(format!(
                    "`b_dec`: unknown `{other}` (median, mean, zeros)"
                ))),
            })
            .transpose()
    }

    /// A penalised kind given no coefficient (`l1`, or JumpReLU's `l0`) and no `target_l0`
    /// aims at L0 min(64, width/8): its default coefficient lands far from any sensible L0
    /// on short runs (README main job, 4,096 latents: ReLU-L1 7.6, April 168, JumpReLU 1,080,
    /// Gated 38; BENCHMARKS.md, "Target L0"). A coefficient given keeps it fixed.
    fn default_target_l0(&self, cfg: &TrainConfig) -> Option<f64> {
        let given = self.l1.is_some() || self.l0.is_some();
        (cfg.penalised() && !given).then(|| (self.width / 8).clamp(1, DEFAULT_TARGET_L0) as f64)
    }

    /// The full training config for activations of width `d_in` and a run of `total_steps`:
    /// the architecture's defaults (`TrainConfig::new`) with this spec's keys over them,
    /// validated. A transcoder (`out_hook`) predicts a hook of the same width. The metadata
    /// (model, hooks, corpus) is left for the caller to fill in.
    pub fn train_config(&self, d_in: usize, total_steps: u64, seed: u64) -> Result<TrainConfig> {
        self.check()?;
        let kind = self.spec_kind()?;
        let arch = (kind.build)(self.k.unwrap_or(0));
        let mut cfg = TrainConfig::new(arch, d_in, self.width, total_steps);
        cfg.seed = seed;
        cfg.normalize_activations = self.normalize.unwrap_or(cfg.normalize_activations);
        if let Some(optimizer) = self.optimizer()? {
            cfg.use_optimizer(optimizer);
        }
        if let Some(init) = self.b_dec_init()? {
            cfg.b_dec_init = init;
        }
        set(&mut cfg.signum_momentum, self.momentum);
        set(&mut cfg.aux_coefficient, self.aux);
        set(&mut cfg.lr, self.lr);
        set(&mut cfg.l1_coefficient, self.l1);
        set(&mut cfg.l0_coefficient, self.l0);
        set(&mut cfg.jumprelu_bandwidth, self.bandwidth);
        set(&mut cfg.jumprelu_init_threshold, self.threshold);
        set(&mut cfg.min_density, self.min_density);
        set(&mut cfg.l1_warmup_steps, self.penalty_warmup);
        set(&mut cfg.aux_warmup_steps, self.aux_warmup);
        set(&mut cfg.encoder_init_scale, self.encoder_scale.map(Some));
        set(&mut cfg.lr_warmup_steps, self.warmup);
        set(&mut cfg.lr_decay_steps, self.decay);
        cfg.target_l0 = self.target_l0.or_else(|| self.default_target_l0(&cfg));
        if let Some(widths) = &self.widths {
            cfg.matryoshka_widths = widths.clone();
            if widths.last() != Some(&self.width) {
                cfg.matryoshka_widths.push(self.width);
            }
        }
        set(&mut cfg.ghost_grads, self.ghost_grads);
        set(&mut cfg.resample_every_steps, self.resample_every);
        set(&mut cfg.control_fraction, self.control);
        set(&mut cfg.control_aux, self.control_aux);
        set(&mut cfg.dead_after_tokens, self.dead_after_tokens);
        cfg.transcoder = self.out_hook.is_some();
        cfg.skip_connection = self.skip.unwrap_or(false);
        cfg.validate()?;
        Ok(cfg)
    }

    /// The dictionary's name: `name`, or one made from the kind and the keys that tell
    /// dictionaries of a run apart, e.g. `0-topk-16384-k32`.
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
    use crate::train::arch::{L1Variant, TrainArchitecture};

    fn refusal(spec: &str) -> String {
        match SaeSpec::parse(spec).and_then(|s| s.check()) {
            Ok(()) => panic!("{spec} accepted"),
            Err(e) => e.to_string(),
        }
    }

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
        assert!(refusal("topk:k=4,width=64,name=../../x").contains("`name`"));
        let mut entry = SaeSpec::parse("topk:k=4,width=64").unwrap();
        entry.name = Some("/abs".into());
        assert!(
            entry.check().is_err(),
            "a name set in a TOML table is checked too"
        );
    }

    /// A spec with no keys but its kind's required ones trains exactly as the library's
    /// `TrainConfig::new` does (the command line, run files and the library share defaults),
    /// but for the L0 a penalised kind aims at when given no coefficient: `TrainConfig::new`
    /// is the maths' config, whose coefficient a caller sets.
    #[test]
    fn a_bare_spec_gives_the_library_defaults() {
        let cases = [
            ("topk:k=4,width=64", TrainArchitecture::TopK { k: 4 }),
            (
                "batchtopk:k=4,width=64",
                TrainArchitecture::BatchTopK { k: 4 },
            ),
            (
                "matryoshka:k=4,width=64",
                TrainArchitecture::MatryoshkaBatchTopK { k: 4 },
            ),
            (
                "relu:width=64",
                TrainArchitecture::ReluL1 {
                    variant: L1Variant::Standard,
                },
            ),
            (
                "april:width=64",
                TrainArchitecture::ReluL1 {
                    variant: L1Variant::April,
                },
            ),
            ("jumprelu:width=64", TrainArchitecture::JumpRelu),
            ("gated:width=64", TrainArchitecture::Gated),
        ];
        assert_eq!(
            cases.len(),
            SPEC_KINDS.len(),
            "every registered kind is covered"
        );
        for (spec, arch) in cases {
            let cfg = SaeSpec::parse(spec)
                .unwrap()
                .train_config(16, 300, 5)
                .unwrap();
            let mut expected = TrainConfig::new(arch, 16, 64, 300);
            expected.seed = 5;
            // A penalised kind given no coefficient aims at L0 min(64, width/8).
            if expected.penalised() {
                expected.target_l0 = Some(8.0);
            }
            assert_eq!(cfg, expected, "{spec}");
            assert!(
                cfg.normalize_activations,
                "{spec}: inputs are normalised by default"
            );
        }
    }

    /// The default target gives way to a coefficient, and to a target asked for.
    #[test]
    fn a_coefficient_or_a_target_replaces_the_default_target() {
        let target = |spec: &str| {
            SaeSpec::parse(spec)
                .unwrap()
                .train_config(16, 300, 0)
                .unwrap()
                .target_l0
        };
        assert_eq!(target("relu:width=4096"), Some(64.0));
        assert_eq!(target("gated:width=256"), Some(32.0));
        assert_eq!(target("relu:width=4096,l1=2"), None);
        assert_eq!(target("april:width=4096,l1=2"), None);
        assert_eq!(target("jumprelu:width=4096,l0=0.5"), None);
        assert_eq!(target("jumprelu:width=4096,target_l0=20"), Some(20.0));
        assert_eq!(target("topk:k=8,width=4096"), None);
    }

    #[test]
    fn keys_override_the_defaults() {
        let spec = "matryoshka:k=4,width=64,widths=8/24,lr=0.01,aux=0.5,optimizer=signum,\
                    momentum=0.9,b_dec=zeros,normalize=false,warmup=3,decay=7,dead_after_tokens=99";
        let cfg = SaeSpec::parse(spec)
            .unwrap()
            .train_config(16, 300, 0)
            .unwrap();
        assert_eq!(cfg.matryoshka_widths, vec![8, 24, 64]);
        assert_eq!(
            (cfg.lr, cfg.aux_coefficient, cfg.signum_momentum),
            (0.01, 0.5, 0.9)
        );
        assert_eq!(cfg.optimizer, Optimizer::Signum);
        assert_eq!(cfg.b_dec_init, BDecInit::Zeros);
        assert!(!cfg.normalize_activations);
        assert_eq!((cfg.lr_warmup_steps, cfg.lr_decay_steps), (3, 7));
        assert_eq!(cfg.dead_after_tokens, 99);
        let cfg = SaeSpec::parse("jumprelu:width=64,l0=3,bandwidth=0.1,threshold=0.2,target_l0=9")
            .unwrap()
            .train_config(16, 300, 0)
            .unwrap();
        assert_eq!(
            (
                cfg.l0_coefficient,
                cfg.jumprelu_bandwidth,
                cfg.jumprelu_init_threshold
            ),
            (3.0, 0.1, 0.2)
        );
        assert_eq!(cfg.target_l0, Some(9.0));
        let cfg = SaeSpec::parse("topk:k=4,width=64,min_density=0.01")
            .unwrap()
            .train_config(16, 300, 0)
            .unwrap();
        assert_eq!(cfg.min_density, 0.01);
        let cfg = SaeSpec::parse("gated:width=64,penalty_warmup=7,aux_warmup=9")
            .unwrap()
            .train_config(16, 300, 0)
            .unwrap();
        assert_eq!((cfg.l1_warmup_steps, cfg.aux_warmup_steps), (7, 9));
    }

    #[test]
    fn every_refusal_names_its_key() {
        for (spec, key) in [
            ("topk:k=4,width=64,optimizer=sgd", "`optimizer`"),
            ("topk:k=4,width=64,b_dec=median2", "`b_dec`"),
            ("topk:k=4,width=64,warmup=-1", "`warmup`"),
            ("matryoshka:k=4,width=64,widths=8/x", "`widths`"),
            ("matryoshka:k=4,width=64,widths=", "`widths`"),
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
            ("topk:k=80,width=64", "`k`"),
            ("topk:k=4,width=64,lr=-1", "`lr`"),
            ("topk:k=4,width=64,min_density=2", "`min_density`"),
            ("topk:k=4,width=64,min_density=x", "`min_density`"),
            ("batchtopk:k=4,width=64,min_density=0.1", "`min_density`"),
            ("topk:k=4,width=64,penalty_warmup=3", "`penalty_warmup`"),
            ("jumprelu:width=64,aux_warmup=3", "`aux_warmup`"),
            ("relu:width=64,penalty_warmup=-3", "`penalty_warmup`"),
            ("topk:k=4,widht=64", "unknown key `widht`"),
            (
                "topk:k=4,width=64,l0=2",
                "`l0` does not apply to topk (only to jumprelu)",
            ),
            ("gated:width=64,out_hook=x", "`out_hook`"),
            ("topk:k=4,width=64,skip=true", "`skip`"),
            ("topk2:k=4,width=64", "`kind`"),
        ] {
            let msg = refusal(spec);
            assert!(msg.contains(key), "{spec}: {msg}");
        }
        SaeSpec::parse("jumprelu:width=64,target_l0=16")
            .unwrap()
            .check()
            .unwrap();
    }

    #[test]
    fn huge_widths_are_refused_before_allocating() {
        for width in ["268435457", "1000000000000", "18446744073709551615"] {
            let msg = refusal(&format!("topk:k=4,width={width}"));
            assert!(msg.contains("`width`"), "{width}: {msg}");
        }
    }

    #[test]
    fn the_registry_is_consistent() {
        let names = kind_names();
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(
            unique.len(),
            names.len(),
            "kind names are unique: {names:?}"
        );
        for kind in &SPEC_KINDS {
            for key in kind.keys {
                assert!(
                    !COMMON_KEYS.contains(key),
                    "{}: `{key}` is common",
                    kind.name
                );
            }
        }
    }
}
