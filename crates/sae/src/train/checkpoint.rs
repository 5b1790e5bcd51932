//! A trainer's whole state on disk, so that a run resumed from a checkpoint takes exactly
//! the steps an uninterrupted run would: weights (JumpReLU's threshold and Gated's r_mag,
//! b_mag included) and optimiser state (Adam's moments, or sign descent's iterate) in
//! `state.safetensors` (f32, bit for bit), and the step, input scale, BatchTopK threshold,
//! firing statistics, averaging weights and the config in `trainer.json` (floats written so
//! they read back exactly).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::config::TrainConfig;
use super::dead::FiringTracker;
use super::optimizer::ParamState;
use super::signum::AverageWeights;
use super::target_l0::L0Controller;
use super::trainer::Trainer;
use crate::error::{Result, SaeError};
use crate::format::atomic::write_atomic;
use crate::format::tensors::{to_bytes, TensorFile};

const STATE: &str = "state.safetensors";
const TRAINER: &str = "trainer.json";
const PARAMS: [&str; 4] = ["w_enc_t", "b_enc", "w_dec", "b_dec"];

#[derive(Serialize, Deserialize)]
struct Scalars {
    config: TrainConfig,
    step: u64,
    input_scale: f32,
    /// A transcoder's target scale (absent before transcoders: the input scale).
    #[serde(default)]
    output_scale: Option<f32>,
    threshold: Option<f64>,
    firing: FiringTracker,
    /// Schedule-free averaging's weights (absent before that optimiser existed).
    #[serde(default)]
    average: AverageWeights,
    /// The `target_l0` controller's state (absent when the config has no target).
    #[serde(default)]
    l0_control: Option<L0Controller>,
}

impl Trainer {
    /// Writes the state into `dir` (created); each file is replaced atomically.
    pub fn save_checkpoint(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| SaeError::io(dir, e))?;
        let (d, f) = (self.cfg.d_in, self.cfg.d_sae);
        let w = &self.weights;
        let params: [(&[f32], Vec<usize>); 4] = [
            (&w.w_enc_t, vec![f, d]),
            (&w.b_enc, vec![f]),
            (&w.w_dec, vec![f, d]),
            (&w.b_dec, vec![d]),
        ];
        // Optimiser state beside each parameter, e.g. `adam_m.w_dec` or `signum_z.b_dec`.
        let mut owned: Vec<(String, Vec<usize>, &[f32])> = Vec::new();
        for (i, (data, shape)) in params.iter().enumerate() {
            owned.push((PARAMS[i].to_string(), shape.clone(), data));
            for (prefix, state) in self.opt[i].tensors(data) {
                owned.push((format!("{prefix}.{}", PARAMS[i]), shape.clone(), state));
            }
        }
        for p in &self.extra {
            owned.push((p.name.to_string(), p.shape.clone(), &p.value));
            for (prefix, state) in p.opt.tensors(&p.value) {
                owned.push((format!("{prefix}.{}", p.name), p.shape.clone(), state));
            }
        }
        let tensors: Vec<(&str, Vec<usize>, &[f32])> = owned
            .iter()
            .map(|(name, shape, data)| (name.as_str(), shape.clone(), *data))
            .collect();
        let path = dir.join(STATE);
        write_atomic(&path, &to_bytes(&path, &tensors)?)?;
        let scalars = Scalars {
            config: self.cfg.clone(),
            step: self.step,
            input_scale: self.input_scale,
            output_scale: Some(self.output_scale),
            threshold: self.threshold,
            firing: self.firing.clone(),
            average: self.average,
            l0_control: self.l0_control,
        };
        let path = dir.join(TRAINER);
        let json = serde_json::to_vec_pretty(&scalars).map_err(|e| SaeError::Json {
            path: path.clone(),
            cause: e,
        })?;
        write_atomic(&path, &json)
    }

    /// A trainer for `cfg` restored from `dir`. The checkpoint must have been written with
    /// the same config: a difference is an error naming the first field that differs.
    pub fn load_checkpoint(cfg: TrainConfig, dir: &Path) -> Result<Trainer> {
        let path = dir.join(TRAINER);
        let text = std::fs::read_to_string(&path).map_err(|e| SaeError::io(&path, e))?;
        let scalars: Scalars = serde_json::from_str(&text).map_err(|e| SaeError::Json {
            path: path.clone(),
            cause: e,
        })?;
        if let Some((field, message)) = first_difference(&scalars.config, &cfg) {
            return Err(SaeError::CfgField {
                path,
                field,
                message: format!("{message}: this checkpoint belongs to another run"),
            });
        }
        let mut trainer = Trainer::new(cfg)?;
        let (d, f) = (trainer.cfg.d_in, trainer.cfg.d_sae);
        let file = TensorFile::open(&dir.join(STATE))?;
        let shapes = [vec![f, d], vec![f], vec![f, d], vec![d]];
        for (i, name) in PARAMS.iter().enumerate() {
            let value = file.read(name, &shapes[i])?;
            let w = &mut trainer.weights;
            match i {
                0 => w.w_enc_t = value,
                1 => w.b_enc = value,
                2 => w.w_dec = value,
                _ => w.b_dec = value,
            }
            trainer.opt[i] = ParamState::restore(trainer.cfg.optimizer, |prefix| {
                file.read(&format!("{prefix}.{name}"), &shapes[i])
            })?;
        }
        for p in &mut trainer.extra {
            p.value = file.read(p.name, &p.shape)?;
            p.opt = ParamState::restore(trainer.cfg.optimizer, |prefix| {
                file.read(&format!("{prefix}.{}", p.name), &p.shape)
            })?;
        }
        if scalars.firing.tokens_since_fired().len() != f {
            return Err(SaeError::CfgField {
                path,
                field: "firing".into(),
                message: format!(
                    "tracks {} latents, not {f}",
                    scalars.firing.tokens_since_fired().len()
                ),
            });
        }
        trainer.step = scalars.step;
        trainer.input_scale = scalars.input_scale;
        trainer.output_scale = scalars.output_scale.unwrap_or(scalars.input_scale);
        trainer.threshold = scalars.threshold;
        trainer.firing = scalars.firing;
        trainer.average = scalars.average;
        if trainer.l0_control.is_some() {
            trainer.l0_control = Some(scalars.l0_control.ok_or_else(|| SaeError::CfgField {
                path: path.clone(),
                field: "l0_control".into(),
                message: "is missing, but the config asks for a target_l0".into(),
            })?);
        }
        Ok(trainer)
    }
}

/// The first config field whose value differs, with both values.
fn first_difference(saved: &TrainConfig, asked: &TrainConfig) -> Option<(String, String)> {
    let (Ok(serde_json::Value::Object(a)), Ok(serde_json::Value::Object(b))) =
        (serde_json::to_value(saved), serde_json::to_value(asked))
    else {
        return Some(("config".into(), "cannot be compared".into()));
    };
    a.iter().find_map(|(key, value)| {
        let theirs = b.get(key).cloned().unwrap_or(serde_json::Value::Null);
        (theirs != *value).then(|| {
            (
                key.clone(),
                format!("is {value} in the checkpoint, {theirs} now"),
            )
        })
    })
}
