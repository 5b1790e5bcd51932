//! `saelab corpus` end to end on small corpora and on the default corpus.

use std::path::PathBuf;
use std::process::{Command, Output};

fn saelab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_saelab"))
        .args(args)
        .output()
        .expect("saelab runs")
}

fn json(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn tiny_model() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../model/tests/fixtures/tiny/llama")
        .display()
        .to_string()
}

#[test]
fn counts_documents_bytes_tokens_and_windows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.jsonl");
    std::fs::write(&path, "{\"body\":\"abcd\"}\n{\"body\":\"efg\"}\n").unwrap();
    let p = path.to_str().unwrap();
    let plain = json(&saelab(&[
        "corpus", "--corpus", p, "--field", "body", "--json",
    ]));
    assert_eq!(plain[0]["documents"], 2);
    assert_eq!(plain[0]["bytes"], 7);
    assert!(plain[0].get("tokens").is_none());

    let model = tiny_model();
    let stats = json(&saelab(&[
        "corpus", "--corpus", p, "--field", "body", "--stats", "--model", &model, "--ctx", "5",
        "--json",
    ]));
    // 7 letter tokens; packed: [eot a b c d] [eot e f g pad] (the separator opens window 2).
    assert_eq!(stats[0]["tokens"], 7);
    assert_eq!(stats[0]["windows"], 2);
}

#[test]
fn errors_name_the_flag_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.jsonl");
    std::fs::write(&path, "{\"text\":\"a\"}\n{\"body\":\"b\"}\n").unwrap();
    let o = saelab(&["corpus", "--corpus", path.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--corpus") && err.contains("c.jsonl: line 2: no field `text`"),
        "{err}"
    );
    let o = saelab(&["corpus", "--corpus", "nowhere"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--corpus") && err.contains("nowhere"), "{err}");
}

#[test]
fn the_default_corpus_has_three_sources() {
    let rows = json(&saelab(&["corpus", "--json"]));
    let names: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["source"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["wiki", "pydocs", "fortunes"]);
    assert_eq!(rows[0]["documents"], 10033);
}
