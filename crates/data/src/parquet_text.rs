//! Parquet corpora (Hugging Face datasets are Parquet shards): one string column read with
//! the low-level column reader, a batch of rows at a time, so a shard of any size streams.

use std::collections::VecDeque;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parquet::basic::{ConvertedType, LogicalType, Type as PhysicalType};
use parquet::column::reader::{get_column_reader, get_typed_column_reader, ColumnReaderImpl};
use parquet::data_type::{ByteArray, ByteArrayType};
use parquet::file::metadata::ParquetMetaData;
use parquet::file::reader::FileReader;
use parquet::file::serialized_reader::{SerializedFileReader, SerializedPageReader};
use parquet::schema::types::ColumnDescPtr;

use crate::document::{Document, Documents};
use crate::error::{DataError, Result};
use crate::fuse::next_until_error;
use saelab_model::panic_guard::quietly;

/// Rows decoded per read: bounds memory to a batch of documents, not a row group.
const BATCH_ROWS: usize = 256;

/// Documents of one Parquet file from the string column `column` (a top-level name or a
/// dotted path); null and blank values are skipped.
pub fn parquet_documents(path: &Path, column: &str) -> Documents {
    Box::new(ParquetFile {
        path: path.to_path_buf(),
        column: column.to_string(),
        state: None,
        done: false,
    })
}

struct ParquetFile {
    path: PathBuf,
    column: String,
    state: Option<State>,
    done: bool,
}

struct State {
    file: Arc<File>,
    meta: ParquetMetaData,
    descr: ColumnDescPtr,
    index: usize,
    next_group: usize,
    reader: Option<ColumnReaderImpl<ByteArrayType>>,
    /// Row number (in the file) of the next row the reader returns.
    row: u64,
    ready: VecDeque<Document>,
    values: Vec<ByteArray>,
    def_levels: Vec<i16>,
}

impl ParquetFile {
    fn open(&self) -> Result<State> {
        let file = File::open(&self.path).map_err(|e| DataError::io(&self.path, e))?;
        let clone = file.try_clone().map_err(|e| DataError::io(&self.path, e))?;
        let reader = SerializedFileReader::new(clone)
            .map_err(|e| DataError::parquet(&self.path, format!("not a Parquet file: {e}")))?;
        let meta = reader.metadata().clone();
        let schema = meta.file_metadata().schema_descr();
        let names: Vec<String> = schema.columns().iter().map(|c| c.path().string()).collect();
        let index = names
            .iter()
            .position(|n| *n == self.column)
            .ok_or_else(|| {
                DataError::parquet(
                    &self.path,
                    format!(
                        "no column `{}` (columns: {}); choose the text column with --field",
                        self.column,
                        names.join(", ")
                    ),
                )
            })?;
        let descr = schema.column(index);
        check_string_column(&descr).map_err(|why| {
            DataError::parquet(&self.path, format!("column `{}` {why}", self.column))
        })?;
        Ok(State {
            file: Arc::new(file),
            meta,
            descr,
            index,
            next_group: 0,
            reader: None,
            row: 0,
            ready: VecDeque::new(),
            values: Vec::new(),
            def_levels: Vec::new(),
        })
    }

    fn next_document(&mut self) -> Result<Option<Document>> {
        if self.state.is_none() {
            self.state = Some(self.open()?);
        }
        let state = self.state.as_mut().expect("opened above");
        loop {
            if let Some(doc) = state.ready.pop_front() {
                return Ok(Some(doc));
            }
            if state.reader.is_none() {
                if state.next_group == state.meta.num_row_groups() {
                    return Ok(None);
                }
                let group = state.meta.row_group(state.next_group);
                let pages = SerializedPageReader::new(
                    state.file.clone(),
                    group.column(state.index),
                    group.num_rows() as usize,
                    None,
                )
                .map_err(|e| {
                    DataError::parquet(
                        &self.path,
                        format!("row group {}: {}", state.next_group, explain(e)),
                    )
                })?;
                state.reader = Some(get_typed_column_reader(get_column_reader(
                    state.descr.clone(),
                    Box::new(pages),
                )));
                state.next_group += 1;
            }
            if !read_batch(state, &self.path, &self.column)? {
                state.reader = None;
            }
        }
    }
}

/// Decodes up to BATCH_ROWS rows into `ready`; false once the row group is exhausted.
fn read_batch(state: &mut State, path: &Path, column: &str) -> Result<bool> {
    let reader = state.reader.as_mut().expect("set by the caller");
    state.values.clear();
    state.def_levels.clear();
    let optional = state.descr.max_def_level() > 0;
    let (rows, _, _) = reader
        .read_records(
            BATCH_ROWS,
            optional.then_some(&mut state.def_levels),
            None,
            &mut state.values,
        )
        .map_err(|e| DataError::parquet(path, format!("column `{column}`: {}", explain(e))))?;
    if rows == 0 {
        return Ok(false);
    }
    let mut values = state.values.drain(..);
    for r in 0..rows {
        let row = state.row + r as u64;
        let present = !optional || state.def_levels[r] == state.descr.max_def_level();
        if !present {
            continue;
        }
        let value = values.next().expect("one value per non-null row");
        let text = std::str::from_utf8(value.data()).map_err(|e| {
            DataError::parquet(
                path,
                format!(
                    "column `{column}`, row {row}: invalid UTF-8 at byte {} of the value",
                    e.valid_up_to()
                ),
            )
        })?;
        if !Document::is_blank(text) {
            state.ready.push_back(
                Document::new(text.to_string())
                    .with("path", path.display().to_string())
                    .with("row", row),
            );
        }
    }
    state.row += rows as u64;
    Ok(true)
}

/// The parquet crate's message, with what to do when a codec was left out of this build.
fn explain(e: parquet::errors::ParquetError) -> String {
    let message = e.to_string();
    if message.contains("Disabled feature at compile time: zstd") {
        return format!(
            "{message} (zstd-compressed Parquet needs saelab built with `--features zstd`)"
        );
    }
    if message.contains("Disabled feature at compile time") {
        return format!("{message} (this build of saelab reads {})", codecs());
    }
    message
}

/// The Parquet codecs this build reads.
fn codecs() -> &'static str {
    match cfg!(feature = "zstd") {
        true => "snappy, gzip, lz4 and zstd",
        false => "snappy, gzip and lz4; zstd with `--features zstd`",
    }
}

/// Err(why) unless the column holds one UTF-8 string per row.
fn check_string_column(descr: &ColumnDescPtr) -> std::result::Result<(), String> {
    if descr.max_rep_level() > 0 {
        return Err("is a list (repeated), not one string per row".into());
    }
    let physical = descr.physical_type();
    let logical = descr.logical_type_ref();
    let is_text = physical == PhysicalType::BYTE_ARRAY
        && (matches!(
            logical,
            Some(LogicalType::String | LogicalType::Json | LogicalType::Enum)
        ) || matches!(
            descr.converted_type(),
            ConvertedType::UTF8 | ConvertedType::JSON | ConvertedType::ENUM
        ));
    if is_text {
        return Ok(());
    }
    let annotation = match logical {
        Some(l) => format!(" ({l:?})"),
        None if physical == PhysicalType::BYTE_ARRAY => " (binary, no string annotation)".into(),
        None => String::new(),
    };
    Err(format!("is {physical}{annotation}, not a string"))
}

impl Iterator for ParquetFile {
    type Item = Result<Document>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut done = self.done;
        let path = self.path.clone();
        // The parquet crate panics on some corrupt lengths and offsets (found by mutation
        // testing): that is this file's error, not a crash.
        let item = next_until_error(&mut done, || {
            quietly(|| self.next_document()).unwrap_or_else(|| {
                Err(DataError::parquet(
                    &path,
                    "the Parquet reader failed on this file: it is corrupt",
                ))
            })
        });
        self.done = done;
        item
    }
}

#[cfg(test)]
mod tests {
    /// The list of codecs follows the build: it used to promise zstd in builds without it.
    #[test]
    fn the_codecs_named_are_the_ones_built_in() {
        assert_eq!(
            super::codecs().contains("--features zstd"),
            !cfg!(feature = "zstd")
        );
    }
}
