use thiserror::Error;

/// Why the server could not start.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ServeError {
    /// Anything wrong with the feature database: missing, not one, another version, another
    /// model, locked, damaged (the message names the file).
    #[error(transparent)]
    Database(#[from] saelab_interp::InterpError),
    #[error("model: {0}")]
    Model(#[from] saelab_model::ModelError),
    #[error("cannot listen on {address}: {cause}")]
    Bind {
        address: String,
        cause: std::io::Error,
    },
    #[error("cannot start the server: {0}")]
    Runtime(std::io::Error),
}

pub type Result<T> = std::result::Result<T, ServeError>;
