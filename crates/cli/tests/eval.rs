//! `saelab eval` end to end: an identity dictionary on the default model changes nothing,
//! the dead-latent window is stated and matters, and bad input is refused clearly.

mod common;

use std::path::Path;
use std::process::Output;

use common::{saelab, stderr, tiny_llama};

use saelab_sae::{Activation, Dictionary, Metadata, Sae, SaeWeights};

fn with_hook(mut sae: Sae, hook: &str) -> Sae {
    sae.metadata = Metadata {
        hook_name: Some(hook.to_string()),
        ..Metadata::default()
    };
    sae
}

/// x̂ = x exactly (`Sae::identity`).
fn identity(d: usize, hook: &str) -> Sae {
    with_hook(Sae::identity(d).unwrap(), hook)
}

fn random_topk(d: usize, d_sae: usize, k: usize, hook: &str) -> Sae {
    let w = SaeWeights::init_tied(d, d_sae, 1.0, 3);
    with_hook(Sae::new(w, Activation::TopK { k }).unwrap(), hook)
}

fn save(sae: &Sae, dir: &Path) -> String {
    sae.save(dir).unwrap();
    dir.display().to_string()
}

fn eval(args: &[&str], json: &Path) -> Output {
    saelab()
        .arg("eval")
        .args(args)
        .arg("--json")
        .arg(json)
        .output()
        .unwrap()
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn an_identity_dictionary_on_the_default_model_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dict = save(
        &identity(576, "blocks.6.hook_resid_post"),
        &tmp.path().join("identity"),
    );
    let json = tmp.path().join("eval.json");
    let o = eval(
        &[
            "--sae", &dict, "--corpus", "wiki", "--tokens", "300", "--ctx", "64",
        ],
        &json,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let r = read_json(&json);
    let d = &r["dictionaries"][0];
    let down = &d["downstream"];
    assert_eq!(down["ce_spliced"], down["ce_clean"]);
    assert_eq!(down["kl"].as_f64(), Some(0.0));
    assert_eq!(d["reconstruction"]["fvu"].as_f64(), Some(0.0));
    assert_eq!(d["reconstruction"]["cossim"].as_f64(), Some(1.0));
    // The model is hurt by ablation, so loss recovered is 1 exactly.
    assert_eq!(down["loss_recovered"].as_f64(), Some(1.0));
    assert!(down["ce_zero"].as_f64().unwrap() > down["ce_clean"].as_f64().unwrap() + 0.5);
    let p = &r["params"];
    assert_eq!(p["tokens_requested"], 300);
    assert_eq!(p["windows"], 5); // 4 full windows of 64 and 44 tokens of a fifth
    assert_eq!(p["include_special"], false);
    assert!(p["positions_evaluated"].as_u64().unwrap() < 300); // start tokens left out
}

#[test]
fn the_dead_count_depends_on_the_stated_window() {
    let tmp = tempfile::tempdir().unwrap();
    let hook = "blocks.1.hook_resid_post";
    let dict = save(&random_topk(32, 256, 2, hook), &tmp.path().join("sparse"));
    let model = tiny_llama();
    let run = |window: &str, name: &str| {
        let json = tmp.path().join(name);
        let o = eval(
            &[
                "--model",
                &model,
                "--sae",
                &dict,
                "--corpus",
                "wiki",
                "--tokens",
                "640",
                "--ctx",
                "64",
                "--dead-window",
                window,
            ],
            &json,
        );
        assert!(o.status.success(), "{}", stderr(&o));
        read_json(&json)
    };
    let short = run("10", "short.json");
    let long = run("1000000", "long.json");
    let dead = |r: &serde_json::Value| r["dictionaries"][0]["sparsity"]["dead"].as_u64().unwrap();
    assert_eq!(short["params"]["dead_window_tokens"], 10);
    assert_eq!(
        short["dictionaries"][0]["sparsity"]["dead_window_tokens"],
        10
    );
    let evaluated = long["params"]["positions_evaluated"].as_u64().unwrap();
    assert_eq!(
        long["params"]["dead_window_tokens"].as_u64(),
        Some(evaluated)
    );
    // Ten tokens of TopK-2 wake at most 20 latents.
    assert!(dead(&short) >= 236, "{}", dead(&short));
    assert!(dead(&long) < dead(&short));
}

#[test]
fn a_dictionary_of_the_wrong_width_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dict = save(
        &random_topk(16, 64, 4, "blocks.1.hook_resid_post"),
        &tmp.path().join("narrow"),
    );
    let o = eval(
        &[
            "--model",
            &tiny_llama(),
            "--sae",
            &dict,
            "--corpus",
            "wiki",
            "--tokens",
            "64",
        ],
        &tmp.path().join("e.json"),
    );
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("narrow") && err.contains("d_in is 16") && err.contains("width 32"),
        "{err}"
    );
    assert!(!tmp.path().join("e.json").exists());
}

#[test]
fn a_hook_the_model_does_not_have_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dict = save(
        &random_topk(32, 64, 4, "blocks.1.hook_resid_post"),
        &tmp.path().join("d"),
    );
    let o = eval(
        &[
            "--model",
            &tiny_llama(),
            "--sae",
            &dict,
            "--hook",
            "blocks.9.hook_resid_post",
            "--tokens",
            "64",
        ],
        &tmp.path().join("e.json"),
    );
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("--hook") && err.contains("blocks.9.hook_resid_post"),
        "{err}"
    );
    // A hook named in the dictionary's own file is checked too.
    let elsewhere = save(
        &random_topk(32, 64, 4, "blocks.7.hook_mlp_out"),
        &tmp.path().join("elsewhere"),
    );
    let o = eval(
        &[
            "--model",
            &tiny_llama(),
            "--sae",
            &elsewhere,
            "--tokens",
            "64",
        ],
        &tmp.path().join("e.json"),
    );
    let err = stderr(&o);
    assert!(
        !o.status.success() && err.contains("blocks.7.hook_mlp_out"),
        "{err}"
    );
}

#[test]
fn more_tokens_than_the_corpus_holds_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dict = save(
        &random_topk(32, 64, 4, "blocks.1.hook_resid_post"),
        &tmp.path().join("d"),
    );
    let corpus = tmp.path().join("small.txt");
    std::fs::write(&corpus, "a short corpus\n\nof two documents\n").unwrap();
    let o = eval(
        &[
            "--model",
            &tiny_llama(),
            "--sae",
            &dict,
            "--corpus",
            corpus.to_str().unwrap(),
            "--tokens",
            "100000",
        ],
        &tmp.path().join("e.json"),
    );
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("--tokens 100000") && err.contains("corpus has only"),
        "{err}"
    );
}
