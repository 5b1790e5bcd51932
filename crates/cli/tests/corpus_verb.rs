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

/// The default corpus as setup built it here: all three sources where apt worked, wiki alone
/// (with the others recorded as skipped) where it did not.
#[test]
fn the_default_corpus_has_the_sources_setup_built() {
    let home = std::env::var_os("SAELAB_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/saelab"));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(home.join("corpus/manifest.json")).unwrap()).unwrap();
    let built: Vec<&str> = ["wiki", "pydocs", "fortunes"]
        .into_iter()
        .filter(|s| manifest["sources"].get(s).is_some())
        .collect();
    for source in ["wiki", "pydocs", "fortunes"] {
        let skipped = manifest["skipped"].get(source).is_some();
        assert_ne!(built.contains(&source), skipped, "{source}: {manifest}");
    }
    let rows = json(&saelab(&["corpus", "--json"]));
    let names: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["source"].as_str().unwrap())
        .collect();
    assert_eq!(names, built);
    assert_eq!(rows[0]["documents"], 10033);
}

/// A corpus that setup built without some sources: `default` reads the rest and warns; the
/// skipped source by name is refused with setup's reason.
#[test]
fn a_corpus_built_without_apt_reads_what_it_has_and_says_what_it_lacks() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("corpus");
    std::fs::create_dir_all(&dir).unwrap();
    for name in ["wiki", "fortunes"] {
        let line = format!("{{\"text\":\"a {name} text\",\"source\":\"{name}\"}}\n");
        std::fs::write(dir.join(format!("{name}.jsonl")), line.repeat(3)).unwrap();
    }
    let manifest = r#"{"sources": {}, "skipped": {"pydocs": "apt-get is not available"}}"#;
    std::fs::write(dir.join("manifest.json"), manifest).unwrap();
    let run = |corpus: &str| {
        Command::new(env!("CARGO_BIN_EXE_saelab"))
            .args(["corpus", "--corpus", corpus, "--json"])
            .env("SAELAB_HOME", home.path())
            .output()
            .unwrap()
    };
    let o = run("default");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("without `pydocs`") && err.contains("apt-get is not available"),
        "{err}"
    );
    let names: Vec<String> = json(&o)
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["source"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["wiki", "fortunes"]);

    let o = run("wiki,pydocs");
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--corpus")
            && err.contains("skipped the default corpus source `pydocs`")
            && err.contains("apt-get is not available"),
        "{err}"
    );
}
