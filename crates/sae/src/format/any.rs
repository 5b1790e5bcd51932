//! One entry point for every dictionary folder saelab reads: the format is told by the files
//! in the folder.
//!
//! | format | files |
//! |---|---|
//! | SAELens | `cfg.json` + `sae_weights.safetensors` |
//! | sparsify | `cfg.json` + `sae.safetensors` |
//! | dictionary_learning | `config.json` + `ae.pt` |

use std::fmt;
use std::path::Path;

use super::{dictionary_learning, saelens, sparsify};
use crate::dictionary::Sae;
use crate::error::{Result, SaeError};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    SaeLens,
    Sparsify,
    DictionaryLearning,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::SaeLens => "SAELens",
            Format::Sparsify => "sparsify",
            Format::DictionaryLearning => "dictionary_learning",
        })
    }
}

impl Format {
    /// The config file and the weights file of a folder in this format.
    pub fn files(self) -> (&'static str, &'static str) {
        match self {
            Format::SaeLens => (saelens::CFG_FILE, saelens::WEIGHTS_FILE),
            Format::Sparsify => (sparsify::CFG_FILE, sparsify::WEIGHTS_FILE),
            Format::DictionaryLearning => (
                dictionary_learning::CONFIG_FILE,
                dictionary_learning::WEIGHTS_FILE,
            ),
        }
    }

    const ALL: [Format; 3] = [
        Format::SaeLens,
        Format::Sparsify,
        Format::DictionaryLearning,
    ];
}

/// Loads the dictionary in `dir`, whichever of the formats above it is in.
pub fn load_any(dir: &Path) -> Result<Sae> {
    match detect(dir)? {
        Format::SaeLens => saelens::load(dir),
        Format::Sparsify => sparsify::load(dir),
        Format::DictionaryLearning => dictionary_learning::load(dir),
    }
}

/// The format of the dictionary in `dir`; an error says which files were looked for, which
/// half of a pair is missing, and which subfolders do hold a dictionary.
pub fn detect(dir: &Path) -> Result<Format> {
    let no = |message: String| SaeError::NoDictionary {
        dir: dir.to_path_buf(),
        message,
    };
    if !dir.is_dir() {
        return Err(no(if dir.exists() {
            "this is a file; give the folder that holds a dictionary".into()
        } else {
            "the folder does not exist".into()
        }));
    }
    if let Some(format) = complete(dir) {
        return Ok(format);
    }
    // A run folder (sparsify's run root has a config.json too) holding dictionaries below.
    let inside = subfolders_with_dictionaries(dir);
    if !inside.is_empty() {
        return Err(no(format!(
            "the dictionaries are in its subfolders: {}",
            inside.join(", ")
        )));
    }
    // Half a pair: say which file is missing.
    let has = |name: &str| dir.join(name).is_file();
    let missing = |format: Format| {
        let (cfg, weights) = format.files();
        let (found, absent) = if has(cfg) {
            (cfg, weights)
        } else {
            (weights, cfg)
        };
        no(format!(
            "found {found} but not {absent} (a {format} dictionary has both)"
        ))
    };
    if has(dictionary_learning::WEIGHTS_FILE) || has(dictionary_learning::CONFIG_FILE) {
        return Err(missing(Format::DictionaryLearning));
    }
    if has(saelens::CFG_FILE) {
        // Both cfg.json formats: SAELens names the width `d_sae`, sparsify does not.
        let text = std::fs::read_to_string(dir.join(saelens::CFG_FILE)).unwrap_or_default();
        let saelens_like = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .is_some_and(|v| v.get("d_sae").is_some());
        return Err(missing(if saelens_like {
            Format::SaeLens
        } else {
            Format::Sparsify
        }));
    }
    let looked_for = Format::ALL
        .iter()
        .map(|f| {
            let (cfg, weights) = f.files();
            format!("{cfg} + {weights} ({f})")
        })
        .collect::<Vec<_>>()
        .join(", ");
    Err(no(format!("looked for {looked_for}")))
}

fn complete(dir: &Path) -> Option<Format> {
    Format::ALL.into_iter().find(|f| {
        let (cfg, weights) = f.files();
        dir.join(cfg).is_file() && dir.join(weights).is_file()
    })
}

/// A sparsify run or a dictionary_learning sweep keeps one dictionary per subfolder
/// (`layers.10/`, `trainer_0/`); name a few so the user can pick.
fn subfolders_with_dictionaries(dir: &Path) -> Vec<String> {
    const SHOWN: usize = 8;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| complete(&e.path()).is_some())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    if names.len() > SHOWN {
        let more = names.len() - SHOWN;
        names.truncate(SHOWN);
        names.push(format!("and {more} more"));
    }
    names
}
