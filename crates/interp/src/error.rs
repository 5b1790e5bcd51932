use std::path::{Path, PathBuf};

use thiserror::Error;

#[derive(Debug, Error)]
#[non_exhaustive]
pub enum InterpError {
    #[error(transparent)]
    Model(#[from] saelab_model::ModelError),
    #[error(transparent)]
    Sae(#[from] saelab_sae::SaeError),
    #[error(transparent)]
    Data(#[from] saelab_data::DataError),
    #[error("tensor operation failed: {0}")]
    Tensor(#[from] candle_core::Error),
    /// Anything wrong with a feature database file: not one, another version, another
    /// model, locked, damaged.
    #[error("feature database {}: {message}", path.display())]
    Database { path: PathBuf, message: String },
    /// An export's output folder or file: not ours to fill, not writable.
    #[error("export {}: {message}", path.display())]
    Export { path: PathBuf, message: String },
    /// A dictionary that does not fit its hook or the database.
    #[error("dictionary `{dictionary}`: {message}")]
    Dictionary { dictionary: String, message: String },
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
}

impl InterpError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        InterpError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn export(path: &Path, message: impl std::fmt::Display) -> Self {
        InterpError::Export {
            path: path.to_path_buf(),
            message: message.to_string(),
        }
    }

    pub fn database(path: &Path, message: impl std::fmt::Display) -> Self {
        InterpError::Database {
            path: path.to_path_buf(),
            message: message.to_string(),
        }
    }
}

pub type Result<T> = std::result::Result<T, InterpError>;
