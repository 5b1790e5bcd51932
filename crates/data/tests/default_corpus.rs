//! The default corpus by name. This file is its own test process: it sets SAELAB_HOME.

use saelab_data::{Corpus, CorpusOptions};

#[test]
fn default_corpus_reads_from_saelab_home_and_says_how_to_install_it() {
    let home = tempfile::tempdir().unwrap();
    std::env::set_var("SAELAB_HOME", home.path());

    let err = Corpus::open("default", &CorpusOptions::default()).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("wiki.jsonl") && msg.contains("run scripts/setup.sh"),
        "{msg}"
    );

    let dir = home.path().join("corpus");
    std::fs::create_dir_all(&dir).unwrap();
    for name in ["wiki", "pydocs", "fortunes"] {
        let line = format!("{{\"text\":\"a {name} text\",\"source\":\"{name}\"}}\n");
        std::fs::write(dir.join(format!("{name}.jsonl")), line.repeat(2)).unwrap();
    }
    let corpus = Corpus::open("fortunes, wiki,wiki", &CorpusOptions::default()).unwrap();
    assert_eq!(corpus.name, "fortunes,wiki");
    let sources: Vec<String> = corpus
        .documents()
        .map(|d| d.unwrap().meta["source"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(sources, ["fortunes", "fortunes", "wiki", "wiki"]);
    let all = Corpus::open("default", &CorpusOptions::default()).unwrap();
    assert_eq!(all.documents().count(), 6);
}
