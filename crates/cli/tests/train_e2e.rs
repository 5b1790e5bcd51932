//! `saelab train-e2e` on the tiny Llama fixture: KL, CE and MSE runs write their dictionaries
//! and logs, a run continues from a trained dictionary, and bad settings are refused by name.

mod common;

use std::path::Path;
use std::process::Output;

use common::{saelab, stderr, tiny_llama, TINY_HOOK};
use serde_json::Value;

fn e2e(out: &Path, extra: &[&str]) -> Output {
    saelab()
        .args(["train-e2e", "--model", &tiny_llama(), "--corpus", "wiki"])
        .args(["--hook", TINY_HOOK, "--ctx", "32", "--batch-windows", "4"])
        .args(["--tokens", "512"])
        .args(extra)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

fn metrics(out: &Path) -> Vec<Value> {
    std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn kl_ce_and_mse_runs_write_dictionaries_and_logs() {
    let dir = tempfile::tempdir().unwrap();
    for loss in ["kl", "ce", "mse"] {
        let out = dir.path().join(loss);
        let o = e2e(&out, &["--loss", loss, "--sae", "topk:k=4,width=64,name=a"]);
        assert!(o.status.success(), "{loss}: {}", stderr(&o));
        assert!(out.join("final/a/cfg.json").exists());
        let lines = metrics(&out);
        assert_eq!(
            lines.len(),
            4,
            "{loss}: 512 tokens are 4 steps of 4 windows of 32"
        );
        for line in &lines {
            assert_eq!(line["l0"].as_f64(), Some(4.0));
            match loss {
                "mse" => assert!(line.get("downstream_loss").is_none()),
                _ => {
                    let d = line["downstream_loss"].as_f64().expect("a downstream loss");
                    assert!(d.is_finite() && d >= 0.0, "{loss}: {d}");
                }
            }
        }
        let summary: Value =
            serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
        assert_eq!(summary["steps"], 4);
    }
    // A KL fine-tune of the MSE-trained dictionary.
    let init = dir.path().join("mse/final/a");
    let out = dir.path().join("fine");
    let o = e2e(
        &out,
        &[
            "--sae",
            "topk:k=4,width=64,name=a",
            "--init",
            init.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(out.join("final/a/cfg.json").exists());
}

#[test]
fn bad_settings_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 4] = [
        (&["--sae", "jumprelu:width=64"], "end-to-end"),
        (
            &["--sae", "topk:k=4,width=64", "--init", "a", "--init", "b"],
            "one per --sae",
        ),
        (&["--sae", "topk:k=4,width=64", "--loss", "l2"], "--loss"),
        (
            &["--sae", "topk:k=4,width=64", "--mse-coefficient=-1"],
            "--mse-coefficient",
        ),
    ];
    for (i, (args, want)) in cases.iter().enumerate() {
        let o = e2e(&dir.path().join(format!("r{i}")), args);
        assert!(!o.status.success(), "{args:?} was accepted");
        let err = stderr(&o);
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(
            !dir.path().join(format!("r{i}")).exists(),
            "{args:?} left a folder"
        );
    }
    // A folder that already holds a run is not overwritten.
    let out = dir.path().join("done");
    assert!(e2e(&out, &["--sae", "topk:k=4,width=64"]).status.success());
    let o = e2e(&out, &["--sae", "topk:k=4,width=64"]);
    assert!(stderr(&o).contains("already holds a run"), "{}", stderr(&o));
}
