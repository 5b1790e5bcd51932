//! `saelab train-contextual` on a cache of the tiny Llama fixture: carry, temporal and TopK
//! dictionaries trained on the same windows write their files, logs and held-out summary; a
//! run interrupted after a checkpoint and resumed ends with the same bytes as one never
//! interrupted; bad specs are refused by name.

mod common;

use std::path::Path;
use std::sync::atomic::AtomicBool;

use common::{saelab, stderr, tiny_cache, TINY_HOOK};
use saelab_train::contextual::{train_contextual, ContextOutcome, ContextStart, ContextualConfig};
use saelab_train::Quiet;
use serde_json::Value;

const SPECS: [&str; 3] = [
    "carry:k=4,width=64,name=carry",
    "temporal:k=4,width=32,heads=2,name=temporal",
    "topk:k=4,width=64,name=topk",
];

fn config(cache: &Path) -> ContextualConfig {
    ContextualConfig {
        cache: cache.to_path_buf(),
        hook: None,
        holdout_windows: 16,
        tokens: None,
        batch_windows: 8,
        buffer_mib: 16,
        seed: 3,
        checkpoint_every: 4,
        log_every: 2,
        dictionaries: SPECS.iter().map(|s| s.to_string()).collect(),
    }
}

fn weights(out: &Path, name: &str) -> Vec<u8> {
    std::fs::read(out.join("final").join(name).join("sae_weights.safetensors")).unwrap()
}

#[test]
fn trains_summarises_and_resumes_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    // 128 windows of 32: 16 held out, 112 for 14 steps of 8.
    tiny_cache(&cache, &[TINY_HOOK], 4096);

    let whole = tmp.path().join("whole");
    let o = saelab()
        .arg("train-contextual")
        .arg("--cache")
        .arg(&cache)
        .args([
            "--holdout-windows",
            "16",
            "--batch-windows",
            "8",
            "--buffer-mib",
            "16",
        ])
        .args(["--seed", "3", "--checkpoint-every", "4", "--log-every", "2"])
        .args(SPECS.iter().flat_map(|s| ["--sae", s]))
        .arg("--out")
        .arg(&whole)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let table = String::from_utf8_lossy(&o.stdout);
    for name in ["carry", "temporal", "topk"] {
        assert!(table.contains(name), "{table}");
    }
    let summary: Value =
        serde_json::from_slice(&std::fs::read(whole.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["steps"], 14);
    let page = std::fs::read_to_string(whole.join("report.html")).unwrap();
    assert!(
        page.contains("carry") && page.contains("temporal"),
        "the run page names them"
    );
    assert!(
        page.contains("Context share during training") && page.contains("Held-out windows"),
        "the run page plots the context share and tables the held-out windows"
    );
    assert_eq!(summary["window"], 31, "the start token is left out");
    for d in summary["dictionaries"].as_array().unwrap() {
        let h = &d["holdout"];
        let fvu = h["fvu"].as_f64().unwrap();
        assert!(fvu.is_finite() && fvu > 0.0, "{d}");
        assert!(h["l0"].as_f64().unwrap() <= 4.0 + 1e-9, "{d}");
        assert_eq!(h["positions"], 16 * 31);
        assert!(d["parameters"].as_u64().unwrap() > 0);
        assert!(d["tokens_per_s"].as_f64().unwrap() > 0.0);
        let share = h["context_share"].as_f64().unwrap();
        match d["kind"].as_str().unwrap() {
            "per_position" => assert_eq!(share, 0.0),
            "temporal" => assert!(share > 0.0, "{d}"),
            _ => assert!((0.0..=1.0).contains(&share)),
        }
    }
    let lines: Vec<Value> = std::fs::read_to_string(whole.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 7 * 3, "every 2nd of 14 steps, 3 dictionaries");
    // The saved folders read back as window dictionaries of their kind.
    for (name, kind) in [
        ("carry", "carry"),
        ("temporal", "temporal"),
        ("topk", "topk"),
    ] {
        let dict =
            saelab_sae::contextual::window::load_window_dictionary(&whole.join("final").join(name))
                .unwrap();
        assert_eq!(dict.architecture(), kind);
    }

    // Interrupted after its first step (a checkpoint), then resumed.
    let parted = tmp.path().join("parted");
    let stop = AtomicBool::new(true);
    let first = train_contextual(
        &parted,
        ContextStart::Fresh(Box::new(config(&cache))),
        &mut Quiet,
        &stop,
    )
    .unwrap();
    assert!(matches!(first, ContextOutcome::Interrupted { step: 1 }));
    assert!(parted.join("checkpoints/step_1").is_dir());
    let go = AtomicBool::new(false);
    let rest = train_contextual(&parted, ContextStart::Resume, &mut Quiet, &go).unwrap();
    assert!(matches!(rest, ContextOutcome::Finished(_)));
    for name in ["carry", "temporal", "topk"] {
        assert_eq!(weights(&parted, name), weights(&whole, name), "{name}");
    }
}

#[test]
fn bad_specs_are_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    tiny_cache(&cache, &[TINY_HOOK], 1024);
    for (spec, expected) in [
        ("carry:width=64", "k= is required"),
        ("carry:k=4,width=64,colour=red", "unknown key `colour`"),
        (
            "temporal:width=30,heads=4",
            "--sae temporal:width=30,heads=4",
        ),
        ("carry:k=4,width=64,decay_init=2", "decay_init"),
    ] {
        let out = tmp.path().join("run");
        let o = saelab()
            .arg("train-contextual")
            .arg("--cache")
            .arg(&cache)
            .args([
                "--holdout-windows",
                "4",
                "--batch-windows",
                "4",
                "--sae",
                spec,
            ])
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        assert!(!o.status.success(), "{spec} was accepted");
        assert!(stderr(&o).contains(expected), "{spec}: {}", stderr(&o));
        assert!(
            !out.join("config.json").exists(),
            "{spec}: a refused run left a folder"
        );
    }
}
