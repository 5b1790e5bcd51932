//! The crate's error type: every file problem names the file. The cause is part of each
//! message and not also a `source`, or a chained display would print it twice.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("reading {path}: {cause}")]
    Read {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("writing {path}: {cause}")]
    Write {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("{path} is not valid JSON: {cause}")]
    Json {
        path: PathBuf,
        cause: serde_json::Error,
    },
    #[error("the eval JSON does not have the saelab-eval shape: {0}")]
    Schema(serde_json::Error),
    /// The reason: what an eval file has that this value lacks.
    #[error("not a saelab eval file ({0})")]
    NotAnEval(String),
    /// A page's document of another kind (a probe page given an eval file, say).
    #[error("not a {format} document ({reason})")]
    WrongFormat {
        format: &'static str,
        reason: String,
    },
    #[error("{path} is not a saelab eval file ({reason}); for a training run, give its folder")]
    NotAnEvalFile { path: PathBuf, reason: String },
}

pub type Result<T, E = ReportError> = std::result::Result<T, E>;
