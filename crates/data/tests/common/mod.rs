//! Helpers shared by the data crate's tests: small corpora written into a temp folder.

#![allow(dead_code)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parquet::basic::Compression;
use parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use saelab_data::{Corpus, CorpusOptions, DataError, Document};

pub fn write(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, bytes).unwrap();
    path
}

/// All documents of a corpus, or the first error.
pub fn read(path: &Path, options: &CorpusOptions) -> Result<Vec<Document>, DataError> {
    Corpus::open(path.to_str().unwrap(), options)?
        .documents()
        .collect()
}

pub fn texts(docs: &[Document]) -> Vec<&str> {
    docs.iter().map(|d| d.text.as_str()).collect()
}

/// The error message of reading a corpus that must fail.
pub fn read_err(path: &Path, options: &CorpusOptions) -> String {
    match read(path, options) {
        Ok(docs) => panic!("expected an error, read {} documents", docs.len()),
        Err(e) => e.to_string(),
    }
}

/// A Parquet file with an optional UTF-8 column `text` (None = null), an INT64 column `id`
/// and a binary column `blob`, in row groups of `group` rows, snappy-compressed.
pub fn write_parquet(path: &Path, rows: &[Option<&str>], group: usize) {
    write_parquet_with(path, rows, group, Compression::SNAPPY)
}

pub fn write_parquet_with(
    path: &Path,
    rows: &[Option<&str>],
    group: usize,
    compression: Compression,
) {
    let schema = parse_message_type(
        "message doc { OPTIONAL BYTE_ARRAY text (UTF8); REQUIRED INT64 id; \
         REQUIRED BYTE_ARRAY blob; }",
    )
    .unwrap();
    let props = WriterProperties::builder()
        .set_compression(compression)
        .build();
    let file = File::create(path).unwrap();
    let mut writer = SerializedFileWriter::new(file, Arc::new(schema), Arc::new(props)).unwrap();
    for (g, chunk) in rows.chunks(group).enumerate() {
        let mut rg = writer.next_row_group().unwrap();
        let mut column = 0;
        while let Some(mut col) = rg.next_column().unwrap() {
            match column {
                0 => {
                    let values: Vec<ByteArray> = chunk
                        .iter()
                        .flatten()
                        .map(|s| ByteArray::from(s.as_bytes().to_vec()))
                        .collect();
                    let defs: Vec<i16> = chunk.iter().map(|r| i16::from(r.is_some())).collect();
                    col.typed::<ByteArrayType>()
                        .write_batch(&values, Some(&defs), None)
                        .unwrap();
                }
                1 => {
                    let ids: Vec<i64> = (0..chunk.len()).map(|i| (g * group + i) as i64).collect();
                    col.typed::<Int64Type>()
                        .write_batch(&ids, None, None)
                        .unwrap();
                }
                _ => {
                    let blobs: Vec<ByteArray> =
                        chunk.iter().map(|_| ByteArray::from(vec![0xff])).collect();
                    col.typed::<ByteArrayType>()
                        .write_batch(&blobs, None, None)
                        .unwrap();
                }
            }
            col.close().unwrap();
            column += 1;
        }
        rg.close().unwrap();
    }
    writer.close().unwrap();
}
