//! A document: its text and what is known about it (source, title, file, line...).

use serde_json::{Map, Value};

/// Document metadata: string keys to JSON values, kept in insertion order of the reader.
pub type Meta = Map<String, Value>;

#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub text: String,
    pub meta: Meta,
}

impl Document {
    pub fn new(text: String) -> Self {
        Document {
            text,
            meta: Meta::new(),
        }
    }

    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.meta.insert(key.to_string(), value.into());
        self
    }

    /// Readers skip documents with nothing but whitespace: they would give empty windows.
    pub fn is_blank(text: &str) -> bool {
        text.trim().is_empty()
    }
}

/// A lazy stream of documents; an error ends the stream of the file it came from.
pub type Documents = Box<dyn Iterator<Item = crate::Result<Document>> + Send>;
