//! Corpus readers on small corpora written by the tests.

mod common;

use common::{read, texts, write, write_parquet};
use saelab_data::{Corpus, CorpusOptions, Format, Source};
use serde_json::json;

#[test]
fn text_file_splits_at_blank_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "a.txt",
        "\u{feff}First doc\nline two\n\n\n  \nSecond doc\r\n\r\nThird\n",
    );
    let docs = read(&path, &CorpusOptions::default()).unwrap();
    assert_eq!(texts(&docs), ["First doc\nline two", "Second doc", "Third"]);
    assert_eq!(docs[1].meta["line"], json!(6));
    assert_eq!(docs[0].meta["path"], json!(path.display().to_string()));
}

#[test]
fn text_file_splits_at_a_delimiter_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "f",
        "A joke.\n\nStill it.\n%\n%\nAnother.\n%  \n",
    );
    let options = CorpusOptions {
        delimiter: Some("%".into()),
        ..Default::default()
    };
    let docs = read(&path, &options).unwrap();
    assert_eq!(texts(&docs), ["A joke.\n\nStill it.", "Another."]);
}

#[test]
fn folder_gives_one_document_per_file_in_sorted_order() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "b.txt", "bee");
    write(dir.path(), "a/z.md", "zed");
    write(dir.path(), "a/y.txt", "why");
    write(dir.path(), ".hidden", "not read");
    write(dir.path(), "empty.txt", " \n");
    let docs = read(dir.path(), &CorpusOptions::default()).unwrap();
    assert_eq!(texts(&docs), ["why", "zed", "bee"]);
}

#[test]
fn jsonl_reads_the_chosen_field_and_keeps_the_rest_as_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "d.jsonl",
        "{\"body\": \"one\", \"title\": \"T\"}\n\n{\"body\": \"two\", \"n\": 2}\n{\"body\": \"\"}\n",
    );
    let options = CorpusOptions {
        field: Some("body".into()),
        ..Default::default()
    };
    let docs = read(&path, &options).unwrap();
    assert_eq!(texts(&docs), ["one", "two"]);
    assert_eq!(docs[0].meta["title"], json!("T"));
    assert_eq!(docs[1].meta["n"], json!(2));
    assert!(!docs[0].meta.contains_key("body"));
}

#[test]
fn parquet_reads_a_string_column_across_row_groups_and_skips_nulls() {
    let dir = tempfile::tempdir().unwrap();
    let rows: Vec<Option<String>> = (0..700)
        .map(|i| (i % 7 != 3).then(|| format!("document {i}")))
        .collect();
    let rows: Vec<Option<&str>> = rows.iter().map(|r| r.as_deref()).collect();
    let path = dir.path().join("shard.parquet");
    write_parquet(&path, &rows, 300);
    let docs = read(&path, &CorpusOptions::default()).unwrap();
    let want: Vec<String> = (0..700)
        .filter(|i| i % 7 != 3)
        .map(|i| format!("document {i}"))
        .collect();
    assert_eq!(texts(&docs), want);
    assert_eq!(docs[1].meta["row"], json!(1));
    assert_eq!(docs[3].meta["row"], json!(4));
}

#[test]
fn folder_of_parquet_shards_is_read_shard_by_shard() {
    let dir = tempfile::tempdir().unwrap();
    write_parquet(&dir.path().join("train-00001.parquet"), &[Some("c")], 10);
    write_parquet(
        &dir.path().join("train-00000.parquet"),
        &[Some("a"), Some("b")],
        10,
    );
    write(dir.path(), "README.md", "a dataset card");
    let corpus = Corpus::open(dir.path().to_str().unwrap(), &CorpusOptions::default()).unwrap();
    assert!(matches!(&corpus.sources[0], Source::Parquet { files, .. } if files.len() == 2));
    let docs = read(dir.path(), &CorpusOptions::default()).unwrap();
    assert_eq!(texts(&docs), ["a", "b", "c"]);
}

#[test]
fn format_comes_from_the_extension_unless_chosen() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "notes.data", "{\"text\": \"x\"}\n");
    let plain = read(&path, &CorpusOptions::default()).unwrap();
    assert_eq!(texts(&plain), ["{\"text\": \"x\"}"]);
    let options = CorpusOptions {
        format: Some("jsonl".parse::<Format>().unwrap()),
        ..Default::default()
    };
    assert_eq!(texts(&read(&path, &options).unwrap()), ["x"]);
}

#[test]
fn a_large_text_file_streams() {
    // 20 MB in 200,000 documents; the reader holds one document at a time.
    let dir = tempfile::tempdir().unwrap();
    let line = "x".repeat(99);
    let body: String = (0..200_000).map(|_| format!("{line}\n\n")).collect();
    let path = write(dir.path(), "big.txt", body);
    let n = Corpus::open(path.to_str().unwrap(), &CorpusOptions::default())
        .unwrap()
        .documents()
        .map(|d| d.unwrap().text.len())
        .filter(|len| *len == 99)
        .count();
    assert_eq!(n, 200_000);
}

/// A folder of several data kinds used to read one kind silently; now it is refused
/// unless a format is chosen. A README beside JSONL files does not count.
#[test]
fn a_folder_of_mixed_kinds_needs_a_format() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.txt", "plain text");
    write(dir.path(), "b.jsonl", "{\"text\": \"json\"}\n");
    let err = read(dir.path(), &CorpusOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("several kinds") && err.contains("1 JSONL") && err.contains("1 text"),
        "{err}"
    );
    let jsonl = CorpusOptions {
        format: Some(Format::Jsonl),
        ..Default::default()
    };
    assert_eq!(texts(&read(dir.path(), &jsonl).unwrap()), ["json"]);
    write_parquet(&dir.path().join("c.parquet"), &[Some("pq")], 1);
    let err = read(dir.path(), &CorpusOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("1 Parquet"), "{err}");

    let readme = tempfile::tempdir().unwrap();
    write(readme.path(), "README.md", "about this data");
    write(readme.path(), "d.jsonl", "{\"text\": \"only\"}\n");
    let docs = read(readme.path(), &CorpusOptions::default()).unwrap();
    assert_eq!(texts(&docs), ["only"]);
}
