use thiserror::Error;

#[derive(Debug, Error)]
pub enum ProbeError {
    #[error(transparent)]
    Model(#[from] saelab_model::ModelError),
    #[error(transparent)]
    Sae(#[from] saelab_sae::SaeError),
    #[error(transparent)]
    Interp(#[from] saelab_interp::InterpError),
    #[error(transparent)]
    Data(#[from] saelab_data::DataError),
    #[error("tensor operation failed: {0}")]
    Tensor(#[from] candle_core::Error),
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
}

impl ProbeError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ProbeError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

pub type Result<T> = std::result::Result<T, ProbeError>;
