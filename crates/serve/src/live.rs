//! The model and dictionaries behind the live pages (ablation, what fires here, steering),
//! loaded at start. A dictionary that cannot serve (missing folder, another shape than its
//! row, a hook this model lacks) keeps its reason: browsing its stored pages still works
//! and its live pages say why they cannot run.

use std::path::Path;

use saelab_model::{HookPoint, LoadedModel};
use saelab_sae::contextual::carry::CARRY_ARCHITECTURE;
use saelab_sae::{Dictionary, Sae};

use crate::database::catalog::DictionaryInfo;

pub struct Live {
    pub model: LoadedModel,
    pub dictionaries: Vec<LiveDictionary>,
}

pub struct LiveDictionary {
    pub name: String,
    pub state: Result<Ready, String>,
}

pub struct Ready {
    pub hook: HookPoint,
    /// A transcoder's output hook (from its metadata), where steering adds its directions.
    pub out_hook: Option<HookPoint>,
    pub sae: Sae,
}

impl Live {
    pub fn new(model: LoadedModel, rows: &[DictionaryInfo]) -> Live {
        let dictionaries = rows
            .iter()
            .map(|row| LiveDictionary {
                name: row.name.clone(),
                state: ready(&model, row),
            })
            .collect();
        Live {
            model,
            dictionaries,
        }
    }

    /// The dictionary ready for live work, or why it is not.
    pub fn dictionary(&self, name: &str) -> Result<&Ready, String> {
        match self.dictionaries.iter().find(|d| d.name == name) {
            Some(d) => d.state.as_ref().map_err(|why| why.clone()),
            None => Err(format!("no dictionary named `{name}`")),
        }
    }
}

fn ready(model: &LoadedModel, row: &DictionaryInfo) -> Result<Ready, String> {
    let cfg = &model.model.cfg;
    let hook = HookPoint::parse(&row.hook, cfg).map_err(|e| format!("hook `{}`: {e}", row.hook))?;
    // Ablation, what fires here and steering encode one position at a time.
    if matches!(row.architecture.as_str(), CARRY_ARCHITECTURE | "temporal") {
        return Err(format!(
            "a {} dictionary: its codes carry along the window, and the live pages run \
             per-position dictionaries only (its stored examples show the codes that are on)",
            row.architecture
        ));
    }
    let sae = saelab_sae::format::load_any(Path::new(&row.path))
        .map_err(|e| format!("cannot load the dictionary folder {}: {e}", row.path))?;
    if sae.d_in() != row.d_in as usize || sae.d_sae() != row.d_sae as usize {
        return Err(format!(
            "the folder {} holds a dictionary of d_in {} and d_sae {}, but the database scanned \
             one of d_in {} and d_sae {} (was the folder replaced after the scan?)",
            row.path,
            sae.d_in(),
            sae.d_sae(),
            row.d_in,
            row.d_sae
        ));
    }
    let width = hook.width(cfg);
    if sae.d_in() != width {
        return Err(format!(
            "the dictionary reads {} values per token but hook {hook} has {width} in this model",
            sae.d_in()
        ));
    }
    let out_hook = match (&sae.transcoder, &sae.metadata.hook_name_out) {
        (Some(_), Some(name)) => {
            Some(HookPoint::parse(name, cfg).map_err(|e| format!("output hook `{name}`: {e}"))?)
        }
        _ => None,
    };
    Ok(Ready {
        hook,
        out_hook,
        sae,
    })
}
