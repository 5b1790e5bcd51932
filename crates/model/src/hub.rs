//! Models named by Hugging Face Hub id, fetched into (or read from) the HF cache.

use std::path::PathBuf;

use std::io::IsTerminal;

use hf_hub::api::sync::ApiBuilder;
use hf_hub::Cache;

use crate::error::{ModelError, Result};

const LOCAL_HINT: &str = "pass a local path instead: --model /path/to/folder (with config.json, \
*.safetensors and tokenizer.json) or --model /path/to/model.gguf";

/// hf-hub reads `HF_HOME` but not `HF_HUB_OFFLINE` or `HF_HUB_CACHE`, so check those here.
pub fn offline() -> bool {
    std::env::var("HF_HUB_OFFLINE")
        .map(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"))
        .unwrap_or(false)
}

/// The HF cache: `HF_HUB_CACHE` if set, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`.
fn cache() -> Cache {
    match std::env::var_os("HF_HUB_CACHE").filter(|v| !v.is_empty()) {
        Some(dir) => Cache::new(PathBuf::from(dir)),
        None => Cache::from_env(),
    }
}

/// Downloads (or finds in the cache) the files of a model repository and returns the
/// snapshot folder that holds them.
pub fn fetch(id: &str) -> Result<PathBuf> {
    let offline = offline();
    let cache = cache();
    let cached = cache.model(id.to_string());
    let api = if offline {
        None
    } else {
        let api = ApiBuilder::from_cache(cache.clone())
            .with_progress(std::io::stderr().is_terminal())
            .build()
            .map_err(|e| ModelError::Hub(format!("cannot start the Hugging Face client: {e}")))?;
        Some(api.model(id.to_string()))
    };
    let get = |file: &str| -> std::result::Result<PathBuf, String> {
        match &api {
            Some(repo) => repo.get(file).map_err(|e| e.to_string()),
            None => cached.get(file).ok_or_else(|| "not cached".to_string()),
        }
    };
    let explain = |file: &str, e: String| -> ModelError {
        if offline {
            ModelError::Hub(format!(
                "model `{id}`: `{file}` is not in the Hugging Face cache ({}) and HF_HUB_OFFLINE \
                 is set, so it cannot be downloaded; {LOCAL_HINT}",
                cache.path().display()
            ))
        } else {
            ModelError::Hub(format!(
                "model `{id}`: could not fetch `{file}` from the Hugging Face Hub ({e}); \
                 if this machine is offline, {LOCAL_HINT}"
            ))
        }
    };
    let config = get("config.json").map_err(|e| explain("config.json", e))?;
    get("tokenizer.json").map_err(|e| explain("tokenizer.json", e))?;
    if get("model.safetensors").is_err() {
        let index = get("model.safetensors.index.json")
            .map_err(|e| explain("model.safetensors or model.safetensors.index.json", e))?;
        for shard in shard_names(&index)? {
            get(&shard).map_err(|e| explain(&shard, e))?;
        }
    }
    config
        .parent()
        .map(PathBuf::from)
        .ok_or_else(|| ModelError::Hub(format!("model `{id}`: unexpected cache layout")))
}

fn shard_names(index: &std::path::Path) -> Result<Vec<String>> {
    let text =
        std::fs::read_to_string(index).map_err(|e| ModelError::file(index, e.to_string()))?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| ModelError::file(index, format!("not valid JSON: {e}")))?;
    let map = json
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| ModelError::config(index, "weight_map", "missing or not an object"))?;
    let mut names: Vec<String> = map
        .values()
        .filter_map(|v| v.as_str().map(String::from))
        .collect();
    names.sort();
    names.dedup();
    Ok(names)
}
