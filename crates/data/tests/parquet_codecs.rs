//! Parquet shards as other tools write them (pyarrow fixtures from reference/parquet_shards.py)
//! and with every codec this build reads.

mod common;

use std::path::{Path, PathBuf};

use common::{read, texts, write_parquet_with};
use parquet::basic::{Compression, GzipLevel};
use saelab_data::CorpusOptions;
use serde_json::json;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// What reference/parquet_shards.py wrote in the `text` column, nulls left out.
fn pyarrow_texts() -> Vec<String> {
    (0..40)
        .filter(|i| i % 5 != 2 || *i == 7)
        .map(|i| match i {
            7 => "naïve café, 東京".to_string(),
            8 => "pyarrow document 9".to_string(),
            _ => format!("pyarrow document {i}"),
        })
        .collect()
}

#[test]
fn pyarrow_snappy_shard_with_dictionary_pages_and_nulls() {
    let docs = read(
        &fixture("pyarrow_snappy.parquet"),
        &CorpusOptions::default(),
    )
    .unwrap();
    assert_eq!(texts(&docs), pyarrow_texts());
    // Row numbers count the null rows too, across the 16-row groups.
    assert_eq!(docs[2].meta["row"], json!(3));
    assert_eq!(docs.last().unwrap().meta["row"], json!(39));
}

#[cfg(feature = "zstd")]
#[test]
fn pyarrow_zstd_shard_reads_with_the_zstd_feature() {
    let docs = read(&fixture("pyarrow_zstd.parquet"), &CorpusOptions::default()).unwrap();
    assert_eq!(texts(&docs), pyarrow_texts());
}

#[cfg(not(feature = "zstd"))]
#[test]
fn pyarrow_zstd_shard_says_which_feature_reads_it() {
    let msg = common::read_err(&fixture("pyarrow_zstd.parquet"), &CorpusOptions::default());
    assert!(
        msg.contains("pyarrow_zstd.parquet") && msg.contains("--features zstd"),
        "{msg}"
    );
}

#[test]
fn gzip_and_lz4_shards_read() {
    let dir = tempfile::tempdir().unwrap();
    for (name, codec) in [
        ("gzip", Compression::GZIP(GzipLevel::default())),
        ("lz4", Compression::LZ4_RAW),
        ("none", Compression::UNCOMPRESSED),
    ] {
        let path = dir.path().join(format!("{name}.parquet"));
        write_parquet_with(&path, &[Some("one"), None, Some("three")], 2, codec);
        let docs = read(&path, &CorpusOptions::default()).unwrap();
        assert_eq!(texts(&docs), ["one", "three"], "{name}");
    }
}
