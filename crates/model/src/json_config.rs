//! A Hugging Face `config.json`, read with errors that name the file and the field.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{ModelError, Result};

pub struct JsonConfig {
    path: PathBuf,
    value: Value,
}

impl JsonConfig {
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ModelError::file(
                path,
                if e.kind() == std::io::ErrorKind::NotFound {
                    "missing (a model folder needs config.json)".to_string()
                } else {
                    format!("cannot read: {e}")
                },
            )
        })?;
        let value: Value = serde_json::from_str(&text)
            .map_err(|e| ModelError::file(path, format!("not valid JSON: {e}")))?;
        if !value.is_object() {
            return Err(ModelError::file(path, "expected a JSON object"));
        }
        Ok(JsonConfig {
            path: path.to_path_buf(),
            value,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn get(&self, key: &str) -> Option<&Value> {
        self.value.get(key).filter(|v| !v.is_null())
    }

    fn error(&self, key: &str, message: impl Into<String>) -> ModelError {
        ModelError::config(&self.path, key, message)
    }

    pub fn opt_usize(&self, key: &str) -> Result<Option<usize>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.as_u64().map(|n| Some(n as usize)).ok_or_else(|| {
                self.error(key, format!("expected a non-negative integer, found {v}"))
            }),
        }
    }

    pub fn usize(&self, key: &str) -> Result<usize> {
        self.opt_usize(key)?
            .ok_or_else(|| self.error(key, "missing"))
    }

    pub fn opt_f64(&self, key: &str) -> Result<Option<f64>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| self.error(key, format!("expected a number, found {v}"))),
        }
    }

    pub fn opt_bool(&self, key: &str) -> Result<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_bool()
                .map(Some)
                .ok_or_else(|| self.error(key, format!("expected true or false, found {v}"))),
        }
    }

    pub fn opt_str(&self, key: &str) -> Result<Option<&str>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_str()
                .map(Some)
                .ok_or_else(|| self.error(key, format!("expected a string, found {v}"))),
        }
    }

    /// The activation named by `key`, or `default` when absent.
    pub fn activation(&self, key: &str, default: &str) -> Result<crate::config::Activation> {
        let name = self.opt_str(key)?.unwrap_or(default);
        crate::config::Activation::from_hf_name(name)
            .ok_or_else(|| self.error(key, format!("unsupported activation `{name}`")))
    }

    /// Fails on a key whose presence means a feature saelab does not implement.
    pub fn reject_present(&self, key: &str, why: &str) -> Result<()> {
        match self.get(key) {
            Some(v) => Err(self.error(key, format!("{why} (found {v})"))),
            None => Ok(()),
        }
    }
}

impl JsonConfig {
    /// The first element of a list of non-negative integers.
    pub fn first_of_list(&self, key: &str) -> Result<Option<usize>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(items)) => {
                Ok(items.first().and_then(|v| v.as_u64()).map(|v| v as usize))
            }
            Some(v) => Err(self.error(
                key,
                format!("expected an integer or a list of them, found {v}"),
            )),
        }
    }
}
