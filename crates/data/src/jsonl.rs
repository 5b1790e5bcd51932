//! JSON Lines corpora: one JSON object per line, the text in a chosen field.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::document::{Document, Documents};
use crate::error::{DataError, Result};
use crate::fuse::next_until_error;
use crate::lines::LineReader;

/// Documents of one JSONL file. The other fields of each object become the metadata; blank
/// lines and documents with empty text are skipped.
pub fn jsonl_documents(path: &Path, field: &str) -> Documents {
    Box::new(JsonlFile {
        path: path.to_path_buf(),
        field: field.to_string(),
        reader: None,
        done: false,
    })
}

struct JsonlFile {
    path: PathBuf,
    field: String,
    reader: Option<LineReader>,
    done: bool,
}

impl JsonlFile {
    fn next_document(&mut self) -> Result<Option<Document>> {
        if self.reader.is_none() {
            self.reader = Some(LineReader::open(&self.path)?);
        }
        let reader = self.reader.as_mut().expect("opened above");
        loop {
            let Some((line_no, line)) = reader.next_line()? else {
                return Ok(None);
            };
            if line.trim().is_empty() {
                continue;
            }
            let fail = |message: String| DataError::Jsonl {
                path: self.path.clone(),
                line: line_no,
                message,
            };
            let value: Value =
                serde_json::from_str(line).map_err(|e| fail(format!("not valid JSON: {e}")))?;
            let Value::Object(mut object) = value else {
                return Err(fail(format!(
                    "{} where a JSON object was expected",
                    kind(&value)
                )));
            };
            let text = match object.remove(&self.field) {
                Some(Value::String(s)) => s,
                Some(other) => {
                    return Err(fail(format!(
                        "field `{}` is {}, not a string",
                        self.field,
                        kind(&other)
                    )))
                }
                None => {
                    let fields: Vec<&str> = object.keys().map(String::as_str).collect();
                    return Err(fail(format!(
                        "no field `{}` (this line has: {}); choose the text field with --field",
                        self.field,
                        fields.join(", ")
                    )));
                }
            };
            if Document::is_blank(&text) {
                continue;
            }
            return Ok(Some(Document { text, meta: object }));
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl Iterator for JsonlFile {
    type Item = Result<Document>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut done = self.done;
        let item = next_until_error(&mut done, || self.next_document());
        self.done = done;
        item
    }
}
