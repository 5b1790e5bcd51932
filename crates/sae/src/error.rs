//! One error type for the crate. Every variant names what was wrong (the config field, the
//! file, the tensor) so a user can fix it without reading the source.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum SaeError {
    /// A configuration value that cannot work (k = 0, a negative learning rate, ...).
    #[error("invalid config: `{field}` {message}")]
    Config {
        field: &'static str,
        message: String,
    },

    /// A dictionary spec (`topk:k=32,width=16384`) or one of its keys that cannot work; the
    /// message names the key.
    #[error("{0}")]
    Spec(String),

    /// Input data that does not fit the dictionary (wrong width, empty batch, non-finite values).
    #[error("invalid input: {0}")]
    Input(String),

    /// The loss measured downstream of the reconstruction (a forward and backward through the
    /// rest of a model) failed.
    #[error("downstream loss: {0}")]
    Downstream(String),

    // The cause is in the message and not also a `source` (a chained display would print it
    // twice).
    #[error("{}: {cause}", path.display())]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },

    #[error("{}: not valid JSON: {cause}", path.display())]
    Json {
        path: PathBuf,
        cause: serde_json::Error,
    },

    /// A key of a dictionary's `cfg.json` that is missing, of the wrong type or out of range.
    #[error("{}: field `{field}` {message}", path.display())]
    CfgField {
        path: PathBuf,
        field: String,
        message: String,
    },

    #[error("{}: tensor `{name}` is missing", path.display())]
    MissingTensor { path: PathBuf, name: String },

    #[error("{}: tensor `{name}` has shape {found:?}, expected {expected:?}", path.display())]
    TensorShape {
        path: PathBuf,
        name: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },

    #[error("{}: tensor `{name}` has dtype {dtype}, expected a float type", path.display())]
    TensorDtype {
        path: PathBuf,
        name: String,
        dtype: String,
    },

    #[error("{}: not a readable safetensors file: {message}", path.display())]
    Safetensors { path: PathBuf, message: String },

    /// A `torch.save` file (dictionary_learning's `ae.pt`) that cannot be read.
    #[error("{}: not a readable PyTorch checkpoint: {message}", path.display())]
    Checkpoint { path: PathBuf, message: String },

    /// A folder that holds no dictionary in a format saelab reads, or only half of one.
    #[error("{}: no dictionary found: {message}", dir.display())]
    NoDictionary { dir: PathBuf, message: String },
}

pub type Result<T> = std::result::Result<T, SaeError>;

impl SaeError {
    pub(crate) fn config(field: &'static str, message: impl Into<String>) -> Self {
        SaeError::Config {
            field,
            message: message.into(),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        SaeError::Io {
            path: path.into(),
            cause: source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SaeError;
    use std::error::Error;

    /// The cause is in the message only: as a `source` too, a chained display (`{:#}`)
    /// printed it twice ("Is a directory (os error 21): Is a directory (os error 21)").
    #[test]
    fn a_cause_is_displayed_once() {
        let io = std::io::Error::from(std::io::ErrorKind::IsADirectory);
        let e = SaeError::io("/tmp/x", io);
        assert!(e.source().is_none());
        assert!(e.to_string().starts_with("/tmp/x: "), "{e}");
        let json = serde_json::from_str::<serde_json::Value>("{").unwrap_err();
        let e = SaeError::Json {
            path: "/tmp/c.json".into(),
            cause: json,
        };
        assert!(e.source().is_none() && e.to_string().contains("not valid JSON"));
    }
}
