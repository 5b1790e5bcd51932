//! The linear baselines fitted beside a run's dictionaries, on the first hook's training
//! rows: PCA (`pca = K`: the covariance of every training batch, replayed ones included) and
//! ICA (`ica = K`: FastICA on the first `ICA_ROWS` training rows, whitened by the PCA of K
//! components). Each is saved under `baselines/` as a dictionary (2K ReLU latents reading and
//! writing ± each component), so `saelab eval` scores it like any other: reconstruction,
//! spliced CE and KL, and the sparsity of its code.

use std::path::Path;

use anyhow::{bail, Context, Result};
use saelab_sae::baseline::{Pca, PcaFit};
use saelab_sae::baseline_ica::{Ica, IcaOptions};
use saelab_sae::{Dictionary, Metadata, Sae};

use crate::config::RunConfig;
use crate::source::Source;
use crate::Observer;

/// Training rows FastICA iterates over (a fixed prefix of the run's batches, so that a
/// resumed run fits the same ICA).
pub const ICA_ROWS: usize = 32_768;

/// The folder of the run holding the baselines.
pub const BASELINES: &str = "baselines";

/// What the baselines accumulate while the run trains.
pub struct BaselineFits {
    pca: Option<usize>,
    ica: Option<usize>,
    covariance: PcaFit,
    ica_rows: Vec<f32>,
    d: usize,
}

/// The fitted baselines.
#[derive(Default)]
pub struct Baselines {
    pub pca: Option<Pca>,
    pub ica: Option<Ica>,
}

impl BaselineFits {
    /// `None` when the run asks for no baseline. Refuses more components than the first
    /// hook has dimensions (zero components is `RunConfig::check`'s refusal).
    pub fn new(run: &RunConfig, source: &Source) -> Result<Option<BaselineFits>> {
        let (hook, d) = &source.hooks[0];
        for (key, k) in [("pca", run.pca), ("ica", run.ica)] {
            if let Some(k) = k.filter(|k| k > d) {
                bail!("`{key}` = {k} is more components than {hook} has dimensions ({d})");
            }
        }
        if run.pca.is_none() && run.ica.is_none() {
            return Ok(None);
        }
        Ok(Some(BaselineFits {
            pca: run.pca,
            ica: run.ica,
            covariance: PcaFit::new(*d),
            ica_rows: Vec::new(),
            d: *d,
        }))
    }

    /// A training batch of the first hook (`[rows, d]`).
    pub fn add(&mut self, rows: &[f32]) {
        self.covariance.add(rows);
        if self.ica.is_some() {
            let room = ICA_ROWS * self.d - self.ica_rows.len();
            self.ica_rows
                .extend_from_slice(&rows[..room.min(rows.len())]);
        }
    }

    pub fn fit(self, seed: u64, observer: &mut dyn Observer) -> Result<Baselines> {
        let pca = self.pca.map(|k| self.covariance.fit(k)).transpose()?;
        let ica = match self.ica {
            None => None,
            Some(k) => {
                let whitening = self.covariance.fit(k)?;
                let options = IcaOptions {
                    seed,
                    ..IcaOptions::default()
                };
                let ica =
                    Ica::fit(&whitening, &self.ica_rows, options).context("the ICA baseline")?;
                if !ica.converged {
                    observer.warn(&format!(
                        "the ICA baseline did not converge in {} FastICA iterations; its \
                         directions are the last iterate",
                        ica.iterations
                    ));
                }
                Some(ica)
            }
        };
        Ok(Baselines { pca, ica })
    }
}

impl Baselines {
    /// Each baseline as a dictionary, with its folder name (`pca-32`, `ica-32`).
    pub fn dictionaries(&self) -> Result<Vec<(String, Sae)>> {
        let mut out = Vec::new();
        if let Some(p) = &self.pca {
            out.push((format!("pca-{}", p.k), p.to_dictionary()?));
        }
        if let Some(i) = &self.ica {
            out.push((format!("ica-{}", i.k), i.to_dictionary()?));
        }
        Ok(out)
    }

    /// Writes each baseline's dictionary to `run_dir/baselines/<name>/` with `metadata`.
    pub fn save(&self, run_dir: &Path, metadata: &Metadata) -> Result<()> {
        for (name, mut sae) in self.dictionaries()? {
            sae.metadata = metadata.clone();
            sae.save(&run_dir.join(BASELINES).join(&name))
                .with_context(|| format!("saving the {name} baseline"))?;
        }
        Ok(())
    }
}
