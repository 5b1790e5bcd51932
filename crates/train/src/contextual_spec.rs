//! The dictionaries of a contextual run: `carry:…` and `temporal:…` specs, and any
//! per-position spec (`topk:k=32,width=8192`) trained on the same windows for comparison,
//! behind one trainer type; with each one's parameter count and training cost per token.

use std::path::Path;

use anyhow::{bail, Context, Result};
use saelab_sae::contextual::carry_train::{CarryConfig, CarryTrainer};
use saelab_sae::contextual::temporal_train::{TemporalConfig, TemporalTrainer};
use saelab_sae::contextual::window::WindowDictionary;
use saelab_sae::contextual::ContextStepStats;
use saelab_sae::{Metadata, SaeSpec, TrainConfig, Trainer};
use serde::{Deserialize, Serialize};

/// A dictionary of the run, its kind and its settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ContextSpec {
    Carry {
        name: String,
        config: CarryConfig,
    },
    Temporal {
        name: String,
        config: TemporalConfig,
    },
    PerPosition {
        name: String,
        config: Box<TrainConfig>,
    },
}

/// Keys a `carry:` spec takes.
const CARRY_KEYS: [&str; 8] = [
    "k",
    "width",
    "decay_init",
    "floor",
    "lr",
    "decay_lr",
    "seed",
    "name",
];
/// Keys a `temporal:` spec takes.
const TEMPORAL_KEYS: [&str; 10] = [
    "k",
    "width",
    "heads",
    "layers",
    "bottleneck",
    "tied",
    "lr",
    "seed",
    "name",
    "gamma",
];

impl ContextSpec {
    /// `--sae` text for inputs `d_in` wide and a run of `total_steps`; `index` names a
    /// dictionary given no `name=`.
    pub fn parse(
        text: &str,
        d_in: usize,
        total_steps: u64,
        seed: u64,
        index: usize,
    ) -> Result<Self> {
        let (kind, rest) = text.split_once(':').unwrap_or((text, ""));
        let allowed: &[&str] = match kind {
            "carry" => &CARRY_KEYS,
            "temporal" => &TEMPORAL_KEYS,
            _ => &[],
        };
        let mut given: Vec<(String, String)> = Vec::new();
        if !allowed.is_empty() {
            for part in rest.split(',').filter(|p| !p.is_empty()) {
                let (k, v) = part
                    .split_once('=')
                    .with_context(|| format!("--sae {text}: `{part}` is not key=value"))?;
                if !allowed.contains(&k) {
                    bail!(
                        "--sae {text}: unknown key `{k}` for {kind} (keys: {})",
                        allowed.join(", ")
                    );
                }
                given.push((k.to_string(), v.to_string()));
            }
        }
        let get = |k: &str| given.iter().find(|p| p.0 == k).map(|p| p.1.as_str());
        let number = |k: &str, v: &str| -> Result<f64> {
            v.parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .with_context(|| format!("--sae {text}: {k}={v} is not a number"))
        };
        let count = |k: &str, v: &str| -> Result<usize> {
            v.parse::<usize>()
                .with_context(|| format!("--sae {text}: {k}={v} is not a whole number"))
        };
        let required = |k: &str| -> Result<usize> {
            count(
                k,
                get(k).with_context(|| format!("--sae {text}: {k}= is required"))?,
            )
        };
        let name = || -> Result<String> {
            let name = get("name").map_or_else(|| format!("{kind}{index}"), str::to_string);
            saelab_sae::train::spec::check_name(&name)?;
            Ok(name)
        };
        match kind {
            "carry" => {
                let mut cfg = CarryConfig::new(d_in, required("width")?, required("k")?);
                cfg.seed = seed;
                for (key, v) in &given {
                    match key.as_str() {
                        "decay_init" => cfg.decay_init = number(key, v)? as f32,
                        "floor" => cfg.floor = number(key, v)? as f32,
                        "lr" => cfg.lr = number(key, v)? as f32,
                        "decay_lr" => cfg.decay_lr = Some(number(key, v)? as f32),
                        "seed" => cfg.seed = count(key, v)? as u64,
                        _ => {}
                    }
                }
                cfg.validate().with_context(|| format!("--sae {text}"))?;
                Ok(ContextSpec::Carry {
                    name: name()?,
                    config: cfg,
                })
            }
            "temporal" => {
                let k = get("k").map(|v| count("k", v)).transpose()?;
                let mut cfg = TemporalConfig::new(d_in, required("width")?, k);
                cfg.seed = seed;
                for (key, v) in &given {
                    match key.as_str() {
                        "heads" => cfg.n_heads = count(key, v)?,
                        "layers" => cfg.n_attn_layers = count(key, v)?,
                        "bottleneck" => cfg.bottleneck_factor = count(key, v)?,
                        "tied" => {
                            cfg.tied = match v.as_str() {
                                "true" => true,
                                "false" => false,
                                _ => bail!("--sae {text}: tied={v} must be true or false"),
                            }
                        }
                        "lr" => cfg.lr = number(key, v)? as f32,
                        "gamma" => cfg.novel_norm_coefficient = number(key, v)? as f32,
                        "seed" => cfg.seed = count(key, v)? as u64,
                        _ => {}
                    }
                }
                cfg.validate().with_context(|| format!("--sae {text}"))?;
                Ok(ContextSpec::Temporal {
                    name: name()?,
                    config: cfg,
                })
            }
            _ => {
                let spec = SaeSpec::parse(text).with_context(|| format!("--sae {text}"))?;
                let config = spec
                    .train_config(d_in, total_steps, seed)
                    .with_context(|| format!("--sae {text}"))?;
                if config.transcoder {
                    bail!("--sae {text}: transcoders have no place in a contextual run");
                }
                let name = spec
                    .name
                    .clone()
                    .unwrap_or_else(|| format!("{kind}{index}"));
                Ok(ContextSpec::PerPosition {
                    name,
                    config: Box::new(config),
                })
            }
        }
    }

    pub fn name(&self) -> &str {
        match self {
            ContextSpec::Carry { name, .. }
            | ContextSpec::Temporal { name, .. }
            | ContextSpec::PerPosition { name, .. } => name,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            ContextSpec::Carry { .. } => "carry",
            ContextSpec::Temporal { .. } => "temporal",
            ContextSpec::PerPosition { .. } => "per_position",
        }
    }

    pub fn width(&self) -> usize {
        match self {
            ContextSpec::Carry { config, .. } => config.d_sae,
            ContextSpec::Temporal { config, .. } => config.d_sae,
            ContextSpec::PerPosition { config, .. } => config.d_sae,
        }
    }

    /// Trained parameters.
    pub fn parameters(&self) -> u64 {
        let (d, f) = (self.d_in() as u64, self.width() as u64);
        match self {
            ContextSpec::Carry { .. } => 2 * d * f + 2 * f + d,
            ContextSpec::PerPosition { .. } => 2 * d * f + f + d,
            ContextSpec::Temporal { config: c, .. } => {
                let e = c.n_embds() as u64;
                let encoder = if c.tied { 0 } else { d * f };
                let layer = 2 * (f * e + e) + 2 * (f * f + f);
                d * f + encoder + d + c.n_attn_layers as u64 * layer
            }
        }
    }

    fn d_in(&self) -> usize {
        match self {
            ContextSpec::Carry { config, .. } => config.d_in,
            ContextSpec::Temporal { config, .. } => config.d_in,
            ContextSpec::PerPosition { config, .. } => config.d_in,
        }
    }

    /// Multiply-adds ×2 per token of one training step (forward and backward), from the
    /// shapes: `codes` is the mean number of codes on per position (carry's carried ones
    /// included) and `len` the window length. Per-position and carry dictionaries pay the
    /// dense encoder product (2·d·f) and sparse terms; the temporal SAE pays its dense
    /// attention projections (f×f for values and output) and attention over the window,
    /// forward and about twice that backward.
    pub fn train_flops_per_token(&self, k: f64, codes: f64, len: usize) -> f64 {
        let (d, f) = (self.d_in() as f64, self.width() as f64);
        match self {
            // encoder 2df; decode 2kd; backward: W_dec 2kd, W_enc 2kd, b_dec 2kd.
            ContextSpec::PerPosition { .. } => 2.0 * d * f + 8.0 * k * d,
            // The same, plus the carried codes' decode into u_t and x̂ (2·codes·d each) and
            // their W_dec gradient.
            ContextSpec::Carry { .. } => 2.0 * d * f + 8.0 * k * d + 6.0 * codes * d,
            ContextSpec::Temporal { config: c, .. } => {
                let e = c.n_embds() as f64;
                let t = (len as f64 + 1.0) / 2.0; // mean positions attended
                let layer = 2.0 * d * f          // z_in = relu(r W_enc)
                    + 2.0 * 2.0 * f * e          // queries and keys
                    + 2.0 * 2.0 * f * f          // values and output
                    + 2.0 * t * (e + f)          // scores and weighted values
                    + 2.0 * f * d; // p W_dec
                let forward = c.n_attn_layers as f64 * layer + 2.0 * d * f + 2.0 * f * d;
                3.0 * forward
            }
        }
    }

    /// The attention's share of `train_flops_per_token` (0 without attention).
    pub fn attention_flops_per_token(&self, len: usize) -> f64 {
        match self {
            ContextSpec::Temporal { config: c, .. } => {
                let (e, f) = (c.n_embds() as f64, c.d_sae as f64);
                let t = (len as f64 + 1.0) / 2.0;
                3.0 * c.n_attn_layers as f64 * 2.0 * t * (e + f)
            }
            _ => 0.0,
        }
    }

    /// The k a position pays for (TopK's k; `None` for penalised or ReLU codes).
    pub fn k(&self) -> Option<usize> {
        match self {
            ContextSpec::Carry { config, .. } => Some(config.k),
            ContextSpec::Temporal { config, .. } => config.k,
            ContextSpec::PerPosition { config, .. } => config.k(),
        }
    }
}

/// One dictionary's trainer.
pub enum ContextTrainer {
    Carry(Box<CarryTrainer>),
    Temporal(Box<TemporalTrainer>),
    PerPosition(Box<Trainer>),
}

impl ContextTrainer {
    pub fn new(spec: &ContextSpec) -> Result<Self> {
        Ok(match spec {
            ContextSpec::Carry { config, .. } => {
                ContextTrainer::Carry(Box::new(CarryTrainer::new(config.clone())?))
            }
            ContextSpec::Temporal { config, .. } => {
                ContextTrainer::Temporal(Box::new(TemporalTrainer::new(config.clone())?))
            }
            ContextSpec::PerPosition { config, .. } => {
                ContextTrainer::PerPosition(Box::new(Trainer::new((**config).clone())?))
            }
        })
    }

    pub fn load_checkpoint(spec: &ContextSpec, dir: &Path) -> Result<Self> {
        let context = || format!("checkpoint {}", dir.display());
        Ok(match spec {
            ContextSpec::Carry { config, .. } => ContextTrainer::Carry(Box::new(
                CarryTrainer::load_checkpoint(config.clone(), dir).with_context(context)?,
            )),
            ContextSpec::Temporal { config, .. } => ContextTrainer::Temporal(Box::new(
                TemporalTrainer::load_checkpoint(config.clone(), dir).with_context(context)?,
            )),
            ContextSpec::PerPosition { config, .. } => ContextTrainer::PerPosition(Box::new(
                Trainer::load_checkpoint((**config).clone(), dir).with_context(context)?,
            )),
        })
    }

    pub fn save_checkpoint(&self, dir: &Path) -> Result<()> {
        match self {
            ContextTrainer::Carry(t) => t.save_checkpoint(dir)?,
            ContextTrainer::Temporal(t) => t.save_checkpoint(dir)?,
            ContextTrainer::PerPosition(t) => t.save_checkpoint(dir)?,
        }
        Ok(())
    }

    /// One step on `windows` windows of `len` positions (`[windows · len, d_in]`).
    /// One step; a per-position dictionary reports in the same fields, context share 0.
    pub fn step(&mut self, x: &[f32], len: usize) -> Result<ContextStepStats> {
        Ok(match self {
            ContextTrainer::Carry(t) => t.step(x, len)?,
            ContextTrainer::Temporal(t) => t.step(x, len)?,
            ContextTrainer::PerPosition(t) => {
                let s = t.step(x)?;
                ContextStepStats {
                    step: s.step,
                    lr: s.lr,
                    loss: s.loss,
                    mse: s.mse,
                    fvu: s.fvu,
                    l0: s.l0,
                    context_share: 0.0,
                }
            }
        })
    }

    /// The trained dictionary, described by `metadata`.
    pub fn dictionary(&self, metadata: Metadata) -> Box<dyn WindowDictionary> {
        match self {
            ContextTrainer::Carry(t) => {
                let mut sae = t.dictionary();
                sae.metadata = metadata;
                Box::new(sae)
            }
            ContextTrainer::Temporal(t) => {
                let mut sae = t.dictionary();
                sae.metadata = metadata;
                Box::new(sae)
            }
            ContextTrainer::PerPosition(t) => {
                let mut sae = t.dictionary();
                sae.metadata = metadata;
                Box::new(sae)
            }
        }
    }
}
