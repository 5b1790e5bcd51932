//! `saelab probe` end to end on the tiny model and a labelled JSONL corpus: the document it
//! writes, its page, the XOR experiment, and bad input refused by name.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{saelab, stderr, tiny_llama};
use saelab_sae::{Activation, Dictionary, Metadata, Sae, SaeWeights};
use serde_json::Value;

/// 48 documents: `kind` animal or number (balanced), `mood` calm or loud crossing it, and
/// every fourth document without the field `extra` (y or z elsewhere).
fn corpus(dir: &Path) -> PathBuf {
    let mut lines = String::new();
    for i in 0..48 {
        let animal = i % 2 == 0;
        let loud = (i / 2) % 2 == 0;
        let mut text = if animal {
            format!("The cat and the dog {i} sat by the river.")
        } else {
            format!("{} plus {} makes {}.", i, i + 1, 2 * i + 1)
        };
        if loud {
            text.push_str(" WAR WAR WAR!");
        }
        let mut doc = serde_json::json!({
            "text": text,
            "kind": if animal { "animal" } else { "number" },
            "mood": if loud { "loud" } else { "calm" },
            "same": "x",
        });
        if i % 4 != 0 {
            doc["extra"] = if i % 8 < 4 { "y" } else { "z" }.into();
        }
        lines.push_str(&format!("{doc}\n"));
    }
    let path = dir.join("labelled.jsonl");
    std::fs::write(&path, lines).unwrap();
    path
}

fn probe(corpus: &Path, args: &[&str]) -> Output {
    saelab()
        .args(["probe", "--model", &tiny_llama(), "--corpus"])
        .arg(corpus)
        .args([
            "--hook",
            "blocks.0.hook_resid_post",
            "--ctx",
            "16",
            "--k",
            "1,4",
        ])
        .args(args)
        .output()
        .unwrap()
}

fn read(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn a_label_study_writes_its_document_and_page() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = corpus(dir.path());
    let (json, page) = (dir.path().join("p.json"), dir.path().join("p.html"));
    let o = probe(
        &corpus,
        &[
            "--label",
            "kind",
            "--json",
            json.to_str().unwrap(),
            "--report",
            page.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let v = read(&json);
    assert_eq!(v["format"], "saelab-probe");
    assert_eq!(v["documents"], 48);
    assert_eq!(v["rows"], 48);
    assert_eq!(
        v["labels"][0]["classes"],
        serde_json::json!(["animal", "number"])
    );
    assert_eq!(v["labels"][0]["documents"], serde_json::json!([24, 24]));
    // 25% of each class held out: 6 + 6 documents; a balanced majority guess scores 50%.
    assert_eq!(v["validation_rows"], 12);
    assert_eq!(v["majority"]["accuracy"], 0.5);
    let settings: Vec<(String, Value)> = v["probes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["setting"].as_str().unwrap().to_string(), p["k"].clone()))
        .collect();
    assert_eq!(
        settings,
        [
            ("all".to_string(), Value::Null),
            ("top_k".to_string(), 1.into()),
            ("random_k".to_string(), 1.into()),
            ("top_k".to_string(), 4.into()),
            ("random_k".to_string(), 4.into()),
        ]
    );
    // The texts differ in every token: the full probe fits its training documents.
    assert_eq!(v["probes"][0]["train_accuracy"], 1.0);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("Sparse probing") && html.contains("<svg"));
    // `saelab report` rewrites the page from the JSON, beside it by default.
    std::fs::remove_file(&page).unwrap();
    let o = saelab().arg("report").arg(&json).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&page).unwrap(), html);
}

#[test]
fn the_xor_experiment_probes_a_b_and_their_xor_per_representation() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = corpus(dir.path());
    let hook = "blocks.0.hook_resid_post";
    let sae = Sae::new(
        SaeWeights::init_tied(32, 96, 1.0, 3),
        Activation::TopK { k: 8 },
    )
    .unwrap();
    let mut sae = sae;
    sae.metadata = Metadata {
        hook_name: Some(hook.to_string()),
        ..Metadata::default()
    };
    let sae_dir = dir.path().join("topk");
    sae.save(&sae_dir).unwrap();
    let json = dir.path().join("x.json");
    let o = probe(
        &corpus,
        &[
            "--xor",
            "kind=animal",
            "mood=loud",
            "--sae",
            sae_dir.to_str().unwrap(),
            "--json",
            json.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let v = read(&json);
    assert_eq!(v["xor_cells"], serde_json::json!([[12, 12], [12, 12]]));
    let rows = v["xor"].as_array().unwrap();
    let names: Vec<&str> = rows
        .iter()
        .map(|r| r["representation"].as_str().unwrap())
        .collect();
    assert_eq!(names, [hook, "topk"]);
    for r in rows {
        for side in ["real", "control"] {
            for which in ["a", "b", "xor"] {
                let acc = r[side][which]["accuracy"].as_f64().unwrap();
                assert!((0.0..=1.0).contains(&acc), "{side} {which} {acc}");
            }
        }
    }
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("XOR cells"), "{out}");
}

#[test]
fn bad_input_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = corpus(dir.path());
    let fails = |args: &[&str], needle: &str| {
        let o = probe(&corpus, args);
        assert!(!o.status.success(), "{args:?} succeeded");
        let e = stderr(&o);
        assert!(e.contains(needle), "{args:?}: {e}");
    };
    fails(&["--label", "same"], "one class only (x)");
    fails(&["--label", "extra"], "has no field `extra`");
    fails(&["--label", "nosuchfield"], "document 1 of the corpus");
    fails(
        &["--xor", "kind", "mood=loud"],
        "both labels must be binary",
    );
    fails(&["--label", "kind=", "--k", "1"], "label: `kind=`");
    fails(&["--label", "kind", "--positions", "middle"], "--positions");
    fails(&["--label", "kind", "--c", "nan"], "--c");
    let sae = Sae::new(
        SaeWeights::init_tied(32, 96, 1.0, 3),
        Activation::TopK { k: 8 },
    );
    let mut sae = sae.unwrap();
    sae.metadata = Metadata {
        hook_name: Some("blocks.1.hook_resid_post".to_string()),
        ..Metadata::default()
    };
    let other = dir.path().join("other");
    sae.save(&other).unwrap();
    fails(
        &["--label", "kind", "--sae", other.to_str().unwrap()],
        "the dictionary reads blocks.1.hook_resid_post but the probe reads blocks.0.hook_resid_post",
    );
    // Skipping documents without the field leaves the other 36.
    let json = dir.path().join("s.json");
    let o = probe(
        &corpus,
        &[
            "--label",
            "extra",
            "--skip-missing",
            "--json",
            json.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("left out 12 documents"),
        "{}",
        stderr(&o)
    );
    assert_eq!(read(&json)["documents"], 36);
}
