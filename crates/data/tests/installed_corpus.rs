//! The default corpus as scripts/setup.sh builds it: every document readable and non-empty,
//! counts as in its manifest, and windows from the default model's tokenizer.

use saelab_data::corpus::default_corpus_dir;
use saelab_data::{windows, Corpus, CorpusOptions, Packing, WindowConfig, DEFAULT_SOURCES};
use saelab_model::gguf::GgufFile;
use saelab_model::TextTokenizer;

fn manifest() -> serde_json::Value {
    let path = default_corpus_dir().join("manifest.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}: run scripts/setup.sh before the tests",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap()
}

#[test]
fn every_source_matches_its_manifest() {
    let manifest = manifest();
    for name in DEFAULT_SOURCES {
        let entry = &manifest["sources"][name];
        let corpus = Corpus::open(name, &CorpusOptions::default()).unwrap();
        let (mut documents, mut bytes) = (0u64, 0u64);
        for doc in corpus.documents() {
            let doc = doc.unwrap();
            assert!(!doc.text.trim().is_empty());
            assert_eq!(doc.meta["source"], name);
            documents += 1;
            bytes += doc.text.len() as u64;
        }
        assert_eq!(documents, entry["documents"].as_u64().unwrap(), "{name}");
        assert_eq!(bytes, entry["text_bytes"].as_u64().unwrap(), "{name}");
    }
    let wiki = Corpus::open("wiki", &CorpusOptions::default()).unwrap();
    let first = wiki.documents().next().unwrap().unwrap();
    assert!(first.meta["title"].is_string() && first.meta["topic"].is_string());
}

#[test]
fn default_model_windows_open_with_endoftext() {
    let path = saelab_model::load::default_model_path();
    let tok = TextTokenizer::from_gguf(&GgufFile::open(&path).unwrap()).unwrap();
    // SmolLM2-Instruct: BOS is the chat marker <|im_start|> (1), EOS <|im_end|> (2); windows
    // use <|endoftext|> (0), its pretraining document separator.
    assert_eq!((tok.bos_id(), tok.eos_id()), (Some(1), Some(2)));
    let config = WindowConfig::for_tokenizer(&tok, 128, Packing::Packed);
    assert_eq!((config.start, config.separator), (Some(0), Some(0)));
    let corpus = Corpus::open("default", &CorpusOptions::default()).unwrap();
    let windows: Vec<_> = windows(corpus.documents(), &tok, config)
        .unwrap()
        .take(50)
        .map(Result::unwrap)
        .collect();
    for w in &windows {
        assert_eq!(w.ids.len(), 128);
        assert_eq!(w.ids[0], 0);
        assert!(w.special[0] && w.mask.iter().all(|m| *m == 1));
        let separators = w.ids[1..].iter().filter(|i| **i == 0).count();
        let flagged = w.special[1..].iter().filter(|s| **s).count();
        assert_eq!(separators, flagged);
    }
    let text = tok.decode(&windows[0].ids[1..]).unwrap();
    assert!(
        text.starts_with("20th-century classical music is"),
        "{text}"
    );
}
