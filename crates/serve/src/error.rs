use std::path::{Path, PathBuf};

use thiserror::Error;

/// Why the server could not start.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ServeError {
    /// Anything wrong with the feature database: missing, not one, another version, another
    /// model, locked, damaged.
    #[error("feature database {}: {message}", path.display())]
    Database { path: PathBuf, message: String },
    #[error("model: {0}")]
    Model(#[from] saelab_model::ModelError),
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: String,
        source: std::io::Error,
    },
    #[error("cannot start the server: {0}")]
    Runtime(std::io::Error),
}

impl ServeError {
    pub fn database(path: &Path, message: impl std::fmt::Display) -> Self {
        ServeError::Database {
            path: path.to_path_buf(),
            message: message.to_string(),
        }
    }
}

pub type Result<T> = std::result::Result<T, ServeError>;
