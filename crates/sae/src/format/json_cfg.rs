//! Typed access to the JSON configs of other tools' dictionaries, with errors that name the
//! file and the field (`trainer.k` for a nested one).

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::{Result, SaeError};

pub fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| SaeError::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| SaeError::Json {
        path: path.to_path_buf(),
        cause: e,
    })
}

/// A JSON object of a config file; `prefix` is its dotted place in the file (`"trainer."`).
pub struct JsonCfg<'a> {
    path: PathBuf,
    prefix: String,
    obj: &'a Map<String, Value>,
}

impl<'a> JsonCfg<'a> {
    pub fn root(path: &Path, value: &'a Value) -> Result<Self> {
        let obj = value.as_object().ok_or_else(|| SaeError::CfgField {
            path: path.to_path_buf(),
            field: "(top level)".into(),
            message: "must be a JSON object".into(),
        })?;
        Ok(JsonCfg {
            path: path.to_path_buf(),
            prefix: String::new(),
            obj,
        })
    }

    /// The object under `name`.
    pub fn child(&self, name: &str) -> Result<JsonCfg<'a>> {
        let v = self.get(name)?;
        let obj = v
            .as_object()
            .ok_or_else(|| self.error(name, format!("must be a JSON object, found {v}")))?;
        Ok(JsonCfg {
            path: self.path.clone(),
            prefix: format!("{}{name}.", self.prefix),
            obj,
        })
    }

    pub fn error(&self, name: &str, message: impl Into<String>) -> SaeError {
        SaeError::CfgField {
            path: self.path.clone(),
            field: format!("{}{name}", self.prefix),
            message: message.into(),
        }
    }

    pub fn contains(&self, name: &str) -> bool {
        self.obj.get(name).is_some_and(|v| !v.is_null())
    }

    pub fn get(&self, name: &str) -> Result<&'a Value> {
        self.obj
            .get(name)
            .ok_or_else(|| self.error(name, "is missing"))
    }

    pub fn optional_u64(&self, name: &str) -> Result<Option<u64>> {
        match self.obj.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v.as_u64().map(Some).ok_or_else(|| {
                self.error(name, format!("must be a non-negative integer, found {v}"))
            }),
        }
    }

    pub fn optional_positive(&self, name: &str) -> Result<Option<usize>> {
        match self.optional_u64(name)? {
            None => Ok(None),
            Some(0) => Err(self.error(name, "must be a positive integer, found 0")),
            Some(n) => usize::try_from(n)
                .map(Some)
                .map_err(|_| self.error(name, format!("= {n} is too large"))),
        }
    }

    pub fn positive(&self, name: &str) -> Result<usize> {
        self.get(name)?;
        self.optional_positive(name)?
            .ok_or_else(|| self.error(name, "must be a positive integer, found null"))
    }

    pub fn string(&self, name: &str) -> Result<&'a str> {
        let v = self.get(name)?;
        v.as_str()
            .ok_or_else(|| self.error(name, format!("must be a string, found {v}")))
    }

    pub fn optional_string(&self, name: &str) -> Result<Option<&'a str>> {
        match self.obj.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_str()
                .map(Some)
                .ok_or_else(|| self.error(name, format!("must be a string, found {v}"))),
        }
    }

    pub fn optional_bool(&self, name: &str) -> Result<Option<bool>> {
        match self.obj.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(self.error(name, format!("must be true or false, found {v}"))),
        }
    }
}
