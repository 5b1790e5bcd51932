//! Line-by-line reading of large text files, with UTF-8 checked per line so an error can say
//! at which byte of the file it is.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use crate::error::{DataError, Result};

pub struct LineReader {
    inner: BufReader<File>,
    path: PathBuf,
    buf: Vec<u8>,
    /// Byte offset of the next line in the file.
    offset: u64,
    /// 1-based number of the line last returned.
    line: u64,
}

impl LineReader {
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| DataError::io(path, e))?;
        Ok(LineReader {
            inner: BufReader::with_capacity(1 << 16, file),
            path: path.to_path_buf(),
            buf: Vec::new(),
            offset: 0,
            line: 0,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The next line's number (1-based) and text without its `\n` or `\r\n`, or `None` at
    /// the end of the file.
    pub fn next_line(&mut self) -> Result<Option<(u64, &str)>> {
        self.buf.clear();
        let n = self
            .inner
            .read_until(b'\n', &mut self.buf)
            .map_err(|e| DataError::io(&self.path, e))?;
        if n == 0 {
            return Ok(None);
        }
        let start = self.offset;
        self.offset += n as u64;
        self.line += 1;
        let mut bytes = &self.buf[..];
        if let Some(rest) = bytes.strip_suffix(b"\n") {
            bytes = rest.strip_suffix(b"\r").unwrap_or(rest);
        }
        // A byte-order mark opens some files written on Windows: not part of the text.
        let mut skipped = 0;
        if start == 0 {
            if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
                bytes = rest;
                skipped = 3;
            }
        }
        let line = self.line;
        std::str::from_utf8(bytes)
            .map(|text| Some((line, text)))
            .map_err(|e| DataError::Utf8 {
                path: self.path.clone(),
                offset: start + skipped + e.valid_up_to() as u64,
            })
    }
}

/// Checks a whole file's bytes as UTF-8, naming the file and the first bad byte.
pub fn utf8_text(path: &Path, bytes: Vec<u8>) -> Result<String> {
    String::from_utf8(bytes).map_err(|e| DataError::Utf8 {
        path: path.to_path_buf(),
        offset: e.utf8_error().valid_up_to() as u64,
    })
}
