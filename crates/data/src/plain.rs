//! Plain-text corpora: one file split into documents (at blank lines, or at a delimiter line
//! such as fortune's `%`), or a folder with one document per file.

use std::path::{Path, PathBuf};

use crate::document::{Document, Documents};
use crate::error::Result;
use crate::lines::{utf8_text, LineReader};

/// Where one document ends and the next begins in a text file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delimiter {
    /// One or more blank lines (whitespace only).
    BlankLine,
    /// A line holding exactly this text (trailing whitespace ignored).
    Line(String),
}

/// Documents of one text file, read line by line.
pub fn file_documents(path: &Path, delimiter: Delimiter) -> Documents {
    Box::new(TextFile {
        path: path.to_path_buf(),
        delimiter,
        reader: None,
        done: false,
    })
}

struct TextFile {
    path: PathBuf,
    delimiter: Delimiter,
    reader: Option<LineReader>,
    done: bool,
}

impl TextFile {
    fn is_boundary(&self, line: &str) -> bool {
        match &self.delimiter {
            Delimiter::BlankLine => line.trim().is_empty(),
            Delimiter::Line(d) => line.trim_end() == d,
        }
    }

    fn next_document(&mut self) -> Result<Option<Document>> {
        if self.reader.is_none() {
            self.reader = Some(LineReader::open(&self.path)?);
        }
        let mut text = String::new();
        let mut first_line = 0;
        loop {
            let reader = self.reader.as_mut().expect("opened above");
            let (number, line) = match reader.next_line()? {
                Some((number, line)) => (number, line.to_string()),
                None => break,
            };
            if self.is_boundary(&line) {
                if Document::is_blank(&text) {
                    text.clear();
                    continue;
                }
                break;
            }
            if text.is_empty() {
                first_line = number;
            }
            text.push_str(&line);
            text.push('\n');
        }
        if Document::is_blank(&text) {
            return Ok(None);
        }
        text.truncate(text.trim_end_matches('\n').len());
        Ok(Some(
            Document::new(text)
                .with("path", self.path.display().to_string())
                .with("line", first_line),
        ))
    }
}

impl Iterator for TextFile {
    type Item = Result<Document>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.next_document() {
            Ok(Some(doc)) => Some(Ok(doc)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// One document per file, in the order given; files with only whitespace are skipped.
pub fn folder_documents(files: Vec<PathBuf>) -> Documents {
    Box::new(files.into_iter().filter_map(|path| {
        let text = std::fs::read(&path)
            .map_err(|e| crate::DataError::io(&path, e))
            .and_then(|bytes| utf8_text(&path, bytes));
        match text {
            Ok(text) if Document::is_blank(&text) => None,
            Ok(text) => Some(Ok(
                Document::new(text).with("path", path.display().to_string())
            )),
            Err(e) => Some(Err(e)),
        }
    }))
}
