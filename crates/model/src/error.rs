//! Typed errors of the model crate. Every variant names the file, field or flag at fault.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A file that cannot be used: missing, truncated, wrong format.
    #[error("{}: {message}", path.display())]
    File { path: PathBuf, message: String },

    /// A configuration value that is missing or invalid.
    #[error("{}: field `{field}`: {message}", path.display())]
    Config {
        path: PathBuf,
        field: String,
        message: String,
    },

    #[error("unknown hook point `{name}`; nearest valid names: {suggestions}")]
    UnknownHook { name: String, suggestions: String },

    #[error("{what} has {tokens} tokens but the model's context length is {context}")]
    TooLong {
        what: String,
        tokens: usize,
        context: usize,
    },

    #[error("{0}")]
    Hub(String),

    #[error("tokenizer: {0}")]
    Tokenizer(String),

    #[error("{0}")]
    Invalid(String),

    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

pub type Result<T> = std::result::Result<T, ModelError>;

impl ModelError {
    pub fn file(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        ModelError::File {
            path: path.into(),
            message: message.into(),
        }
    }

    pub fn config(
        path: impl Into<PathBuf>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        ModelError::Config {
            path: path.into(),
            field: field.into(),
            message: message.into(),
        }
    }
}
