//! saelab's evaluator against an independent reference: HF transformers running the same
//! GGUF with the same tokens and the same dictionary (`reference/spliced_eval.py`, fixture
//! committed). Every metric must agree within 1e-3 relative.

use std::path::PathBuf;

use saelab_data::windows::Window;
use saelab_eval::{evaluate, EvalDictionary, EvalOptions};
use saelab_model::HookPoint;
use serde_json::Value;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/spliced_reference")
}

fn transcoder_fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/spliced_transcoder")
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn close(what: &str, got: f64, want: f64) {
    let rel = (got - want).abs() / want.abs().max(1e-12);
    assert!(
        rel < 1e-3,
        "{what}: saelab {got}, reference {want} (relative {rel:.2e})"
    );
    eprintln!("{what:<40} saelab {got:<22} reference {want:<22} rel {rel:.1e}");
}

/// The fixture's rows as windows, checking that both tokenizers agree on special ids.
fn windows_of(expected: &Value, loaded: &saelab_model::LoadedModel) -> Vec<Window> {
    expected["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            let list = |k: &str| -> Vec<u64> {
                row[k]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_u64().unwrap())
                    .collect()
            };
            let ids: Vec<u32> = list("ids").iter().map(|&i| i as u32).collect();
            let mask: Vec<u8> = list("mask").iter().map(|&m| m as u8).collect();
            let special: Vec<bool> = list("special").iter().map(|&s| s == 1).collect();
            for (t, &id) in ids.iter().enumerate() {
                if mask[t] == 1 {
                    assert_eq!(
                        loaded.tokenizer.is_special(id),
                        special[t],
                        "the tokenizers disagree on whether id {id} is special"
                    );
                }
            }
            let special = special
                .iter()
                .zip(&mask)
                .map(|(&s, &m)| s || m == 0)
                .collect();
            Window { ids, mask, special }
        })
        .collect()
}

/// Every reconstruction, sparsity and downstream metric of `r`'s only dictionary against
/// the reference's.
fn compare_metrics(r: &saelab_eval::EvalResults, expected: &Value) {
    assert_eq!(
        r.params.positions_evaluated,
        expected["counts"]["splice_positions"].as_u64().unwrap()
    );
    assert_eq!(
        r.params.ce_positions_counted,
        expected["counts"]["ce_positions"].as_u64().unwrap()
    );
    let d = serde_json::to_value(&r.dictionaries[0]).unwrap();
    for key in [
        "mse",
        "sse_per_token",
        "l2_loss",
        "fvu",
        "variance_explained",
        "cossim",
        "relative_norm",
        "shrinkage",
        "explained_variance_legacy",
    ] {
        close(
            key,
            num(&d["reconstruction"][key]),
            num(&expected["reconstruction"][key]),
        );
    }
    for key in ["l0", "l1"] {
        close(
            key,
            num(&d["sparsity"][key]),
            num(&expected["sparsity"][key]),
        );
    }
    assert_eq!(d["sparsity"]["dead"], expected["sparsity"]["dead"]);
    let density: Vec<f64> = r.dictionaries[0].latents.density.clone();
    let want: Vec<f64> = expected["sparsity"]["density"]
        .as_array()
        .unwrap()
        .iter()
        .map(num)
        .collect();
    assert_eq!(density.len(), want.len());
    for (i, (g, w)) in density.iter().zip(&want).enumerate() {
        assert!((g - w).abs() < 1e-12, "density of latent {i}: {g} vs {w}");
    }
    for key in [
        "ce_clean",
        "ce_spliced",
        "ce_zero",
        "ce_mean",
        "ce_delta",
        "loss_recovered",
        "loss_recovered_mean_ablation",
        "kl",
        "kl_div_score",
    ] {
        close(
            key,
            num(&d["downstream"][key]),
            num(&expected["downstream"][key]),
        );
    }
    close(
        "kl_zero",
        r.hooks[0].kl_zero,
        num(&expected["downstream"]["kl_zero"]),
    );
    close(
        "kl_mean",
        r.hooks[0].kl_mean,
        num(&expected["downstream"]["kl_mean"]),
    );
}

/// The fixture in `dir` evaluated by saelab in one batch (the reference's legacy mean is over
/// the whole fixture): its dictionary folder at the fixture's `hook`, reading `input_hook`
/// when the fixture names one (a transcoder).
fn evaluate_fixture(dir: &std::path::Path, folder: &str) -> (saelab_eval::EvalResults, Value) {
    let expected: Value =
        serde_json::from_slice(&std::fs::read(dir.join("expected.json")).unwrap()).unwrap();
    let loaded = saelab_model::load(None).expect("the default model (scripts/setup.sh)");
    let windows = windows_of(&expected, &loaded);
    let sae = saelab_sae::format::load_any(&dir.join(folder)).unwrap();
    let cfg = &loaded.model.cfg;
    let hook = |key: &str| {
        expected[key]
            .as_str()
            .map(|name| HookPoint::parse(name, cfg).unwrap())
    };
    let dictionary = EvalDictionary {
        input_hook: hook("input_hook"),
        name: folder.into(),
        path: "fixture".into(),
        hook: hook("hook").expect("the fixture names its hook"),
        sae: sae.into(),
        prune: None,
    };
    let options = EvalOptions {
        batch_windows: windows.len(),
        ..EvalOptions::default()
    };
    let r = evaluate(
        &loaded.model,
        &windows,
        &[dictionary],
        &options,
        &mut |_| {},
    )
    .unwrap();
    (r, expected)
}

/// A transcoder reading the MLP's input (`ln2.hook_normalized`) and spliced at its output
/// (`hook_mlp_out`), against HF transformers with the same transcoder in a hook on layer 6's
/// MLP (`reference/spliced_transcoder.py`).
#[test]
fn a_transcoder_spliced_at_the_mlp_output_matches_hf_transformers() {
    let (r, expected) = evaluate_fixture(&transcoder_fixture(), "transcoder");
    assert_eq!(
        r.dictionaries[0].input_hook.as_deref(),
        Some("blocks.6.ln2.hook_normalized")
    );
    assert_eq!(r.dictionaries[0].architecture, "transcoder");
    compare_metrics(&r, &expected);
}

#[test]
fn every_metric_matches_hf_transformers_on_the_same_gguf() {
    let (r, expected) = evaluate_fixture(&fixture(), "dictionary");
    assert_eq!(r.params.positions_evaluated, 157);
    compare_metrics(&r, &expected);
}
