//! The `saelab` binary end to end on the default model (run scripts/setup.sh first) and on
//! the tiny fixture models.

use std::path::PathBuf;
use std::process::{Command, Output};

fn saelab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_saelab"))
        .args(args)
        .output()
        .expect("saelab runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

fn model_fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../model/tests/fixtures")
}

fn reference() -> serde_json::Value {
    let text = std::fs::read_to_string(model_fixtures().join("smollm2_reference.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn tokenize_prints_the_reference_ids_as_one_json_array() {
    let r = reference();
    for i in [0usize, 2, 6, 8] {
        let p = &r["prompts"][i];
        let o = saelab(&["tokenize", "--text", p["text"].as_str().unwrap()]);
        assert!(o.status.success(), "{}", stderr(&o));
        let got: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
        assert_eq!(got, p["token_ids"]);
        assert_eq!(stdout(&o).trim().lines().count(), 1);
    }
}

#[test]
fn generate_prints_only_the_greedy_continuation() {
    let r = reference();
    let g = &r["greedy"][1];
    let prompt = r["prompts"][g["prompt_index"].as_u64().unwrap() as usize]["text"]
        .as_str()
        .unwrap();
    let o = saelab(&["generate", "--prompt", prompt, "--max-tokens", "8"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), g["new_text"].as_str().unwrap());
}

#[test]
fn hooks_lists_every_hook_point_with_its_shape() {
    let o = saelab(&["hooks"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert_eq!(out.lines().count(), 2 + 30 * 11);
    assert!(out
        .lines()
        .any(|l| l.starts_with("blocks.29.hook_resid_post") && l.ends_with("[batch, pos, 576]")));
    assert!(out
        .lines()
        .any(|l| l.starts_with("blocks.6.mlp.hook_post") && l.ends_with("[batch, pos, 1536]")));
}

#[test]
fn activations_summarise_each_hook() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("t.txt");
    std::fs::write(&text, "The cat sat on the mat. ".repeat(40)).unwrap();
    let o = saelab(&[
        "activations",
        "--hook",
        "blocks.2.hook_resid_post",
        "--hook",
        "blocks.1.mlp.hook_post",
        "--text",
        text.to_str().unwrap(),
        "--ctx",
        "64",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let tokens = report["blocks.2.hook_resid_post"]["tokens"]
        .as_u64()
        .unwrap();
    assert!(tokens > 200, "{report}");
    assert_eq!(report["blocks.1.mlp.hook_post"]["d"], 1536);
    assert!(
        report["blocks.2.hook_resid_post"]["mean_norm"]
            .as_f64()
            .unwrap()
            > 0.0
    );
}

#[test]
fn bad_input_gets_a_clear_error_and_no_panic() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = model_fixtures().join("tiny/llama");
    let tiny = tiny.to_str().unwrap();
    let cases: Vec<(Vec<String>, Vec<&str>)> = vec![
        (
            vec![
                "activations".into(),
                "--hook".into(),
                "blocks.3.hook_resid_pots".into(),
                "--text".into(),
                "x".into(),
            ],
            vec!["--hook", "unknown hook point", "blocks.3.hook_resid_post"],
        ),
        (
            vec![
                "hooks".into(),
                "--model".into(),
                dir.path().join("none.gguf").to_string_lossy().into(),
            ],
            vec!["--model", "none.gguf", "no such GGUF file"],
        ),
        (
            vec![
                "generate".into(),
                "--model".into(),
                tiny.into(),
                "--prompt".into(),
                "word ".repeat(80),
                "--max-tokens".into(),
                "2".into(),
            ],
            vec!["--prompt", "context length is 64"],
        ),
    ];
    for (args, expect) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = saelab(&args);
        let err = stderr(&o);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(!err.contains("panicked"), "{err}");
        for e in expect {
            assert!(err.contains(e), "{args:?}: `{e}` not in {err}");
        }
    }
    let bad = dir.path().join("bad.txt");
    std::fs::write(&bad, b"ok \xff\xfe bytes").unwrap();
    let o = saelab(&[
        "activations",
        "--hook",
        "blocks.0.hook_resid_post",
        "--text",
        bad.to_str().unwrap(),
    ]);
    let err = stderr(&o);
    assert!(
        !o.status.success() && err.contains("--text") && err.contains("not valid UTF-8"),
        "{err}"
    );
}

/// With RUST_BACKTRACE=1 (common in CI), an error from candle carried some 50 lines of
/// frames; the message is one line, and RUST_BACKTRACE still applies to panics.
#[test]
fn errors_carry_no_backtrace_under_rust_backtrace() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.gguf");
    // A GGUF v3 header that declares 272 tensors and 33 metadata entries, then ends.
    let mut bytes = b"GGUF".to_vec();
    bytes.extend_from_slice(&3u32.to_le_bytes());
    bytes.extend_from_slice(&272u64.to_le_bytes());
    bytes.extend_from_slice(&33u64.to_le_bytes());
    std::fs::write(&path, bytes).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_saelab"))
        .args(["generate", "--prompt", "hi", "--model"])
        .arg(&path)
        .env("RUST_BACKTRACE", "1")
        .env_remove("RUST_LIB_BACKTRACE")
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("cut.gguf") && err.contains("GGUF header"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}
