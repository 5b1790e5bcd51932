//! Typed errors of the data crate. Every variant names the file (and line, field, column or
//! byte offset) or the option at fault.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    // The cause is in the message and not also a `source` (a chained display would print it
    // twice).
    #[error("{}: {cause}", path.display())]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },

    #[error("{}: invalid UTF-8 at byte {offset}", path.display())]
    Utf8 { path: PathBuf, offset: u64 },

    /// A JSONL line that is not a JSON object or lacks the text field.
    #[error("{}: line {line}: {message}", path.display())]
    Jsonl {
        path: PathBuf,
        line: u64,
        message: String,
    },

    /// A Parquet file that cannot be read, or whose column is missing or not text.
    #[error("{}: {message}", path.display())]
    Parquet { path: PathBuf, message: String },

    #[error("{what}: the corpus has no documents")]
    Empty { what: String },

    /// The caller asked a harvest to stop; the shards written so far stay, and the same
    /// harvest resumes after them.
    #[error("the harvest into {} was stopped after {windows} windows; run it again to resume", dir.display())]
    Stopped { dir: PathBuf, windows: u64 },

    #[error(
        "{}: the default corpus source `{name}` is not installed; run scripts/setup.sh (it \
         builds the default corpus in $SAELAB_HOME/corpus, default ~/.cache/saelab/corpus)",
        path.display()
    )]
    NotInstalled { path: PathBuf, name: String },

    #[error(
        "{}: scripts/setup.sh skipped the default corpus source `{name}` ({reason}); its \
         note says how to add it, or use the sources it built (`default` reads those)",
        path.display()
    )]
    SkippedBySetup {
        path: PathBuf,
        name: String,
        reason: String,
    },

    /// A corpus spec or option that makes no sense (`what` names it).
    #[error("{what}: {message}")]
    Invalid { what: String, message: String },

    #[error("model: {0}")]
    Model(#[from] saelab_model::ModelError),

    /// An activation cache file that cannot be used (`path` names it).
    #[error("{}: {message}", path.display())]
    Cache { path: PathBuf, message: String },

    #[error("tokenizing document {document}: {cause}")]
    Tokenizer {
        document: u64,
        cause: saelab_model::ModelError,
    },
}

pub type Result<T> = std::result::Result<T, DataError>;

impl DataError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.into(),
            cause: source,
        }
    }

    pub fn invalid(what: impl Into<String>, message: impl Into<String>) -> Self {
        DataError::Invalid {
            what: what.into(),
            message: message.into(),
        }
    }

    pub fn cache(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        DataError::Cache {
            path: path.into(),
            message: message.into(),
        }
    }

    pub fn parquet(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        DataError::Parquet {
            path: path.into(),
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::DataError;
    use std::error::Error;

    /// The cause is in the message only, so a chained display prints it once.
    #[test]
    fn a_cause_is_displayed_once() {
        let e = DataError::io("/tmp/x", std::io::Error::from(std::io::ErrorKind::NotFound));
        assert!(e.source().is_none());
        assert!(e.to_string().starts_with("/tmp/x: "), "{e}");
    }
}
