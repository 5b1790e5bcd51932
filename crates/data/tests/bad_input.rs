//! Bad corpora fail with an error that names the file and the line, field, column or byte.

mod common;

use common::{read_err, write, write_parquet};
use saelab_data::{Corpus, CorpusOptions};

fn field(f: &str) -> CorpusOptions {
    CorpusOptions {
        field: Some(f.into()),
        ..Default::default()
    }
}

#[test]
fn empty_corpora_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let text = write(dir.path(), "empty.txt", "\n \n\n");
    assert!(read_err(&text, &CorpusOptions::default()).contains("has no documents"));
    let jsonl = write(dir.path(), "blank.jsonl", "\n\n");
    let msg = read_err(&jsonl, &CorpusOptions::default());
    assert!(
        msg.contains("blank.jsonl") && msg.contains("no documents"),
        "{msg}"
    );
    let folder = dir.path().join("nothing");
    std::fs::create_dir(&folder).unwrap();
    assert!(read_err(&folder, &CorpusOptions::default()).contains("no documents"));
}

#[test]
fn invalid_utf8_names_the_file_and_byte_offset() {
    let dir = tempfile::tempdir().unwrap();
    let text = write(dir.path(), "bad.txt", b"good line\n\nab\xffcd\n".as_slice());
    let msg = read_err(&text, &CorpusOptions::default());
    assert!(
        msg.contains("bad.txt") && msg.contains("invalid UTF-8 at byte 13"),
        "{msg}"
    );

    let folder = dir.path().join("docs");
    write(&folder, "ok.txt", "fine");
    write(&folder, "worse.txt", b"\xc3\x28".as_slice());
    let msg = read_err(&folder, &CorpusOptions::default());
    assert!(
        msg.contains("worse.txt") && msg.contains("at byte 0"),
        "{msg}"
    );

    let jsonl = write(
        dir.path(),
        "b.jsonl",
        b"{\"text\": \"a\"}\n{\"text\": \"\xfe\"}\n".as_slice(),
    );
    let msg = read_err(&jsonl, &CorpusOptions::default());
    assert!(
        msg.contains("b.jsonl") && msg.contains("at byte 24"),
        "{msg}"
    );
}

#[test]
fn jsonl_errors_name_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("{\"text\": \"a\"}\nnot json\n", "line 2: not valid JSON"),
        (
            "{\"text\": \"a\"}\n\n[1, 2]\n",
            "line 3: an array where a JSON object",
        ),
        (
            "{\"body\": \"a\", \"id\": 1}\n",
            "line 1: no field `text` (this line has: body, id)",
        ),
        (
            "{\"text\": 5}\n",
            "line 1: field `text` is a number, not a string",
        ),
    ];
    for (i, (body, want)) in cases.iter().enumerate() {
        let path = write(dir.path(), &format!("c{i}.jsonl"), body);
        let msg = read_err(&path, &CorpusOptions::default());
        assert!(
            msg.contains(&format!("c{i}.jsonl")) && msg.contains(want),
            "{msg}"
        );
    }
}

#[test]
fn parquet_column_errors_name_the_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.parquet");
    write_parquet(&path, &[Some("a")], 10);
    let msg = read_err(&path, &field("content"));
    assert!(
        msg.contains("s.parquet") && msg.contains("no column `content` (columns: text, id, blob)"),
        "{msg}"
    );
    let msg = read_err(&path, &field("id"));
    assert!(msg.contains("column `id` is INT64, not a string"), "{msg}");
    let msg = read_err(&path, &field("blob"));
    assert!(msg.contains("column `blob` is BYTE_ARRAY (binary"), "{msg}");

    let fake = write(dir.path(), "fake.parquet", "not parquet at all");
    let msg = read_err(&fake, &CorpusOptions::default());
    assert!(msg.contains("fake.parquet: not a Parquet file"), "{msg}");
}

#[test]
fn unknown_corpus_names_and_misplaced_options_are_errors() {
    let err = Corpus::open("no-such-corpus", &CorpusOptions::default()).unwrap_err();
    assert!(
        err.to_string().contains("not a default corpus name"),
        "{err}"
    );
    let dir = tempfile::tempdir().unwrap();
    let text = write(dir.path(), "t.txt", "x");
    let err = Corpus::open(text.to_str().unwrap(), &field("body")).unwrap_err();
    assert!(
        err.to_string().contains("only to JSONL and Parquet"),
        "{err}"
    );
    let err = Corpus::open("wiki", &field("body")).unwrap_err();
    assert!(err.to_string().contains("fixed format"), "{err}");
}
