use thiserror::Error;

#[derive(Debug, Error)]
pub enum EvalError {
    #[error(transparent)]
    Model(#[from] saelab_model::ModelError),
    #[error(transparent)]
    Sae(#[from] saelab_sae::SaeError),
    #[error(transparent)]
    Data(#[from] saelab_data::DataError),
    #[error("tensor operation failed: {0}")]
    Tensor(#[from] candle_core::Error),
    /// A dictionary that does not fit the hook it is evaluated at.
    #[error("dictionary `{dictionary}`: {message}")]
    Dictionary { dictionary: String, message: String },
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
}

impl EvalError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        EvalError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

pub type Result<T> = std::result::Result<T, EvalError>;
