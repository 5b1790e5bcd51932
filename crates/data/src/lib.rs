//! saelab's data stage: corpus readers (plain text, JSONL, Parquet, the default corpus) that
//! stream documents, and the fixed-length token windows made from them.

pub mod activations;
pub mod cache;
pub mod corpus;
pub mod document;
pub mod error;
pub mod files;
mod fuse;
pub mod jsonl;
pub mod lines;
pub mod parquet_text;
pub mod plain;
pub mod shuffle;
pub mod tokenize;
pub mod windows;

pub use corpus::{Corpus, CorpusOptions, Format, Source, DEFAULT_SOURCES};
pub use document::{Document, Documents, Meta};
pub use error::{DataError, Result};
pub use plain::Delimiter;
pub use shuffle::shuffle_documents;
pub use windows::{windows, Packing, Window, WindowConfig, Windows, DEFAULT_WINDOW_LEN};
