//! `saelab features --export FORMAT DIR`: a feature database written out in another
//! tool's layout, after a scan or from an existing database.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use saelab_interp::export::neuronpedia::{self, NeuronpediaOptions, DEFAULT_FEATURES_PER_BATCH};

#[derive(clap::Args)]
pub struct ExportArgs {
    /// Write the database in another tool's layout: `neuronpedia DIR` (the batch files
    /// Neuronpedia imports). Without --sae, --db names an existing database: no scan.
    #[arg(long, num_args = 2, value_names = ["FORMAT", "DIR"])]
    export: Option<Vec<String>>,
    /// Neuronpedia: the dictionary to export, when the database holds several.
    #[arg(long, requires = "export")]
    np_dictionary: Option<String>,
    /// Neuronpedia model id [default: the scan's model, e.g. `smollm2-135m-instruct`].
    #[arg(long, requires = "export")]
    np_model_id: Option<String>,
    /// Neuronpedia SAE set [default: the dictionary's name].
    #[arg(long, requires = "export")]
    np_sae_set: Option<String>,
    /// Neuronpedia layer [default: the hook's block].
    #[arg(long, requires = "export")]
    np_layer: Option<u32>,
    /// Features per Neuronpedia batch file.
    #[arg(long, default_value_t = DEFAULT_FEATURES_PER_BATCH, requires = "export")]
    np_batch: usize,
}

/// An export checked before any scan starts.
pub struct ExportPlan {
    dir: PathBuf,
    options: NeuronpediaOptions,
}

impl ExportArgs {
    pub fn plan(&self) -> Result<Option<ExportPlan>> {
        let Some([format, dir]) = self.export.as_deref() else {
            return Ok(None);
        };
        if format != "neuronpedia" {
            bail!("--export {format}: unknown format (known: neuronpedia)");
        }
        if self.np_batch == 0 {
            bail!("--np-batch must be at least 1");
        }
        Ok(Some(ExportPlan {
            dir: PathBuf::from(dir),
            options: NeuronpediaOptions {
                dictionary: self.np_dictionary.clone(),
                model_id: self.np_model_id.clone(),
                sae_set: self.np_sae_set.clone(),
                layer: self.np_layer,
                features_per_batch: self.np_batch,
            },
        }))
    }
}

impl ExportPlan {
    /// Whether the database must hold a single dictionary (none was named).
    pub fn needs_single_dictionary(&self) -> bool {
        self.options.dictionary.is_none()
    }
}

pub fn run(plan: &ExportPlan, db: &Path) -> Result<()> {
    let done = neuronpedia::export(db, &plan.dir, &plan.options)
        .with_context(|| format!("--export neuronpedia {}", plan.dir.display()))?;
    println!(
        "neuronpedia: {} features of `{}` in {} batch file(s), {} never active \
         (model_id {}, layer {}, sae_set {}): {}",
        done.features,
        done.dictionary,
        done.batches,
        done.skipped,
        done.model_id,
        done.layer,
        done.sae_set,
        plan.dir.display()
    );
    Ok(())
}
