//! Resolving `--model` (nothing, a path, or a hub id) to a model and its tokenizer.

use std::path::{Path, PathBuf};

use crate::error::{ModelError, Result};
use crate::gguf::GgufFile;
use crate::json_config::JsonConfig;
use crate::tokenizer::TextTokenizer;
use crate::transformer::Transformer;
use crate::weights::SafetensorsDir;
use crate::{gpt2, hub, llama, neox};

/// File name of the default model inside `$SAELAB_HOME/models`.
pub const DEFAULT_MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

pub struct LoadedModel {
    pub model: Transformer,
    pub tokenizer: TextTokenizer,
    /// What the user asked for, for metadata and messages.
    pub name: String,
}

/// saelab's data folder: `$SAELAB_HOME`, else `~/.cache/saelab`.
pub fn saelab_home() -> PathBuf {
    if let Some(home) = std::env::var_os("SAELAB_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(home);
    }
    let user_home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    user_home.join(".cache").join("saelab")
}

pub fn default_model_path() -> PathBuf {
    saelab_home().join("models").join(DEFAULT_MODEL_FILE)
}

/// Loads the model named by `spec`: `None` is the default model, an existing path is a
/// GGUF file or a Hugging Face folder, anything else a hub id.
pub fn load(spec: Option<&str>) -> Result<LoadedModel> {
    match spec {
        None => {
            let path = default_model_path();
            if !path.exists() {
                return Err(ModelError::file(
                    &path,
                    "the default model is not installed; run scripts/setup.sh (it fetches it into \
                     $SAELAB_HOME, default ~/.cache/saelab) or pass --model",
                ));
            }
            load_path(&path, DEFAULT_MODEL_FILE)
        }
        Some(s) => {
            let path = Path::new(s);
            if path.exists() || looks_like_path(s) {
                load_path(path, s)
            } else {
                let dir = hub::fetch(s)?;
                load_hf_dir(&dir, s)
            }
        }
    }
}

/// Something the user clearly meant as a file, even if it does not exist.
fn looks_like_path(s: &str) -> bool {
    s.starts_with('/') || s.starts_with('.') || s.starts_with('~') || s.ends_with(".gguf")
}

pub fn load_path(path: &Path, name: &str) -> Result<LoadedModel> {
    if path.is_dir() {
        load_hf_dir(path, name)
    } else {
        load_gguf(path, name)
    }
}

pub fn load_gguf(path: &Path, name: &str) -> Result<LoadedModel> {
    let mut g = GgufFile::open(path)?;
    let cfg = llama::config_from_gguf(&g)?;
    cfg.validate()
        .map_err(|m| ModelError::file(path, format!("model shape: {m}")))?;
    let tokenizer = TextTokenizer::from_gguf(&g)?;
    let model = llama::build(cfg, &mut g, llama::Naming::Gguf)?;
    Ok(LoadedModel {
        model,
        tokenizer,
        name: name.to_string(),
    })
}

pub fn load_hf_dir(dir: &Path, name: &str) -> Result<LoadedModel> {
    let config = JsonConfig::read(&dir.join("config.json"))?;
    let model_type = config
        .opt_str("model_type")?
        .ok_or_else(|| ModelError::config(config.path(), "model_type", "missing"))?
        .to_string();
    let cfg = match model_type.as_str() {
        "llama" => llama::config_from_hf(&config)?,
        "gpt2" => gpt2::config_from_hf(&config)?,
        "gpt_neox" => neox::config_from_hf(&config)?,
        other => {
            return Err(ModelError::config(
                config.path(),
                "model_type",
                format!("unsupported model type `{other}` (saelab hosts llama, gpt2, gpt_neox)"),
            ))
        }
    };
    cfg.validate()
        .map_err(|m| ModelError::config(config.path(), "(model shape)", m))?;
    let tokenizer = TextTokenizer::from_file(
        &dir.join("tokenizer.json"),
        first_id(&config, "bos_token_id")?,
        first_id(&config, "eos_token_id")?,
    )?;
    let mut weights = SafetensorsDir::open(dir)?;
    let model = match cfg.family {
        crate::config::Family::Llama => llama::build(cfg, &mut weights, llama::Naming::Hf)?,
        crate::config::Family::Gpt2 => gpt2::build(cfg, &mut weights)?,
        crate::config::Family::GptNeox => neox::build(cfg, &mut weights)?,
    };
    Ok(LoadedModel {
        model,
        tokenizer,
        name: name.to_string(),
    })
}

/// `eos_token_id` may be one id or a list of them.
fn first_id(config: &JsonConfig, key: &str) -> Result<Option<u32>> {
    match config.opt_usize(key) {
        Ok(v) => Ok(v.map(|v| v as u32)),
        Err(_) => Ok(config.first_of_list(key)?.map(|v| v as u32)),
    }
}
