//! Many dictionaries trained from one stream of activations: each named, each reading one
//! of the stream's hooks, all stepped on the same batch so the model forward is paid once.

use std::path::Path;

use super::config::TrainConfig;
use super::trainer::{StepStats, Trainer};
use crate::error::{Result, SaeError};

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DictionarySpec {
    /// Folder name under `final/` and `checkpoints/step_N/`.
    pub name: String,
    /// Index of the hook (in the stream's hook list) this dictionary reads.
    pub hook: usize,
    /// A transcoder's target: the index of the hook it predicts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out_hook: Option<usize>,
    pub config: TrainConfig,
}

impl DictionarySpec {
    /// The hook whose activations the dictionary reconstructs or predicts.
    pub fn target_hook(&self) -> usize {
        self.out_hook.unwrap_or(self.hook)
    }
}

pub struct TrainerSet {
    specs: Vec<DictionarySpec>,
    trainers: Vec<Trainer>,
}

impl TrainerSet {
    pub fn new(specs: Vec<DictionarySpec>) -> Result<Self> {
        let mut names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(SaeError::Config {
                field: "name",
                message: format!("`{}` is used by two dictionaries", w[0]),
            });
        }
        let trainers = specs
            .iter()
            .map(|s| Trainer::new(s.config.clone()))
            .collect::<Result<Vec<_>>>()?;
        Ok(TrainerSet { specs, trainers })
    }

    /// Restores every trainer from `dir/<name>/` (see `Trainer::load_checkpoint`).
    pub fn load_checkpoint(specs: Vec<DictionarySpec>, dir: &Path) -> Result<Self> {
        let trainers = specs
            .iter()
            .map(|s| Trainer::load_checkpoint(s.config.clone(), &dir.join(&s.name)))
            .collect::<Result<Vec<_>>>()?;
        Ok(TrainerSet { specs, trainers })
    }

    pub fn save_checkpoint(&self, dir: &Path) -> Result<()> {
        for (spec, trainer) in self.specs.iter().zip(&self.trainers) {
            trainer.save_checkpoint(&dir.join(&spec.name))?;
        }
        Ok(())
    }

    pub fn specs(&self) -> &[DictionarySpec] {
        &self.specs
    }

    pub fn trainers(&self) -> &[Trainer] {
        &self.trainers
    }

    /// Every dictionary's density snapshot, in spec order (`Trainer::take_snapshot`).
    pub fn take_snapshots(&mut self) -> Vec<super::snapshot::Snapshot> {
        self.trainers
            .iter_mut()
            .map(Trainer::take_snapshot)
            .collect()
    }

    /// Steps taken (the same for every trainer).
    pub fn steps(&self) -> u64 {
        self.trainers.first().map_or(0, Trainer::steps)
    }

    /// One step of every dictionary; `hooks[h]` is the batch of hook `h`, `[rows, d_h]`.
    pub fn step(&mut self, hooks: &[&[f32]]) -> Result<Vec<StepStats>> {
        self.specs
            .iter()
            .zip(&mut self.trainers)
            .map(|(spec, trainer)| {
                let hook = |h: usize| {
                    hooks.get(h).copied().ok_or_else(|| SaeError::Config {
                        field: "hook",
                        message: format!("{}: no hook number {h}", spec.name),
                    })
                };
                match spec.out_hook {
                    Some(out) => trainer.step_transcoder(hook(spec.hook)?, hook(out)?),
                    None => trainer.step(hook(spec.hook)?),
                }
            })
            .collect()
    }
}
