//! `saelab eval` end to end: an identity dictionary on the default model changes nothing,
//! the dead-latent window is stated and matters, the D/E projection is in METRICS.md's
//! units, pruning the densest latents lowers L0 by exactly their densities, and bad input is
//! refused clearly.

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

/// A dictionary that never fires (b_enc far below any pre-activation, so x̂ = b_dec = 0)
/// whose encoder reads `factor` times the direction each latent writes: every raw D/E ratio
/// is exactly 1/factor for a power-of-two factor, and `sse_per_token` is E‖x‖².
fn silent(d: usize, d_sae: usize, factor: f32, hook: &str) -> Sae {
    let mut w = SaeWeights::init_tied(d, d_sae, 1.0, 11);
    w.w_enc_t = w.w_dec.iter().map(|v| v * factor).collect();
    w.b_enc = vec![-1e6; d_sae];
    with_hook(Sae::new(w, Activation::Relu).unwrap(), hook)
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

fn f64s(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

#[test]
fn the_de_projection_is_scaled_by_the_input_hooks_mean_square_norm() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, output) = ("blocks.0.hook_resid_post", "blocks.1.hook_mlp_out");
    let sae = save(&silent(32, 16, 4.0, input), &tmp.path().join("sae"));
    // The same weights as a transcoder from `input` to `output`: its scale is `input`'s.
    let mut tc = silent(32, 16, 4.0, input);
    tc.apply_b_dec_to_input = false;
    tc.transcoder = Some(saelab_sae::Transcoder { skip: None });
    tc.metadata.hook_name_out = Some(output.into());
    let tc = save(&tc, &tmp.path().join("tc"));
    let at_output = save(&silent(32, 16, 4.0, output), &tmp.path().join("out"));
    let json = tmp.path().join("e.json");
    let o = eval(
        &[
            "--model",
            &tiny_llama(),
            "--sae",
            &format!("sae={sae}"),
            "--sae",
            &format!("tc={tc}"),
            "--sae",
            &format!("out={at_output}"),
            "--corpus",
            "wiki",
            "--tokens",
            "640",
            "--ctx",
            "64",
        ],
        &json,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let r = read_json(&json);
    assert_eq!(r["version"], 2);
    let d = |i: usize| &r["dictionaries"][i];
    // x̂ = 0, so the squared error per token is E‖x‖² over the same positions.
    let e_sq = |i: usize| d(i)["reconstruction"]["sse_per_token"].as_f64().unwrap();
    let (sae_scale, tc_scale) = (e_sq(0), e_sq(2));
    assert_eq!(
        d(0)["geometry"]["input_mean_sq_norm"].as_f64(),
        Some(sae_scale)
    );
    assert_eq!(
        d(1)["geometry"]["input_mean_sq_norm"].as_f64(),
        Some(sae_scale)
    );
    assert_eq!(
        d(2)["geometry"]["input_mean_sq_norm"].as_f64(),
        Some(tc_scale)
    );
    assert!(
        (sae_scale / tc_scale - 1.0).abs() > 0.01,
        "two hooks, two scales"
    );
    for (i, mean_sq) in [(0, sae_scale), (1, sae_scale), (2, tc_scale)] {
        let raw = f64s(&d(i)["latents"]["de_projection_raw"]);
        let scaled = f64s(&d(i)["latents"]["de_projection"]);
        assert_eq!(raw, vec![0.25; 16]);
        assert_eq!(scaled, vec![0.25 * (32.0 / mean_sq); 16]);
        let g = &d(i)["geometry"];
        assert_eq!(g["de_projection_raw_median"].as_f64(), Some(0.25));
        assert_eq!(g["de_projection_median"].as_f64(), Some(scaled[0]));
    }
}

#[test]
fn pruning_the_densest_latents_lowers_l0_by_exactly_their_densities() {
    let tmp = tempfile::tempdir().unwrap();
    let hook = "blocks.1.hook_resid_post";
    let topk = save(&random_topk(32, 256, 4, hook), &tmp.path().join("topk"));
    let relu = save(
        &with_hook(
            Sae::new(SaeWeights::init_tied(32, 64, 1.0, 5), Activation::Relu).unwrap(),
            hook,
        ),
        &tmp.path().join("relu"),
    );
    let json = tmp.path().join("e.json");
    let o = eval(
        &[
            "--model",
            &tiny_llama(),
            "--sae",
            &format!("topk={topk}"),
            "--sae",
            &format!("relu={relu}"),
            "--prune-densest",
            "1,16,40",
            "--corpus",
            "wiki",
            "--tokens",
            "640",
            "--ctx",
            "64",
        ],
        &json,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let r = read_json(&json);
    let names: Vec<&str> = r["dictionaries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "topk",
            "topk-pruned-1",
            "topk-pruned-16",
            "topk-pruned-40",
            "relu",
            "relu-pruned-1",
            "relu-pruned-16",
            "relu-pruned-40"
        ]
    );
    let positions = r["params"]["positions_evaluated"].as_u64().unwrap();
    // Under the dead window, `density` is over every evaluated position.
    assert_eq!(r["params"]["dead_window_tokens"].as_u64(), Some(positions));
    for (base, pruned) in [(0, [1, 2, 3]), (4, [5, 6, 7])] {
        let full = &r["dictionaries"][base];
        assert!(full.get("pruned").is_none());
        let density = f64s(&full["latents"]["density"]);
        let l0 = full["sparsity"]["l0"].as_f64().unwrap();
        for (i, count) in pruned.into_iter().zip([1usize, 16, 40]) {
            let d = &r["dictionaries"][i];
            let p = &d["pruned"];
            assert_eq!(p["by"], "density");
            assert_eq!(p["count"].as_u64(), Some(count as u64));
            assert_eq!(p["density_positions"].as_u64(), Some(positions));
            let removed: Vec<usize> = p["removed"]
                .as_array()
                .unwrap()
                .iter()
                .map(|j| j.as_u64().unwrap() as usize)
                .collect();
            assert_eq!(removed.len(), count);
            // The densest, densest first: no kept latent is denser than a removed one.
            let least_removed = removed.iter().map(|&j| density[j]).fold(1.0, f64::min);
            let kept_max = (0..density.len())
                .filter(|j| !removed.contains(j))
                .map(|j| density[j])
                .fold(0.0, f64::max);
            assert!(least_removed >= kept_max, "{least_removed} < {kept_max}");
            assert!(removed.windows(2).all(|w| density[w[0]] >= density[w[1]]));
            let sum = p["densities_removed_sum"].as_f64().unwrap();
            let expected: f64 = removed.iter().map(|&j| density[j]).sum();
            assert!((sum - expected).abs() <= 1e-12, "{sum} vs {expected}");
            assert!(sum > 0.0);
            // The identity the flag exists for, to floating-point precision.
            let pruned_l0 = d["sparsity"]["l0"].as_f64().unwrap();
            assert!(
                (l0 - sum - pruned_l0).abs() <= 1e-12 * l0,
                "{} − {sum} ≠ {pruned_l0}",
                l0
            );
            // Removed latents never fire; the others fire exactly as before.
            let after = f64s(&d["latents"]["density"]);
            for j in 0..density.len() {
                let want = if removed.contains(&j) {
                    0.0
                } else {
                    density[j]
                };
                assert_eq!(after[j], want, "latent {j}");
            }
            let down = &d["downstream"];
            assert!(down["ce_delta"].as_f64().unwrap().is_finite());
            assert!(down["loss_recovered"].as_f64().unwrap().is_finite());
        }
    }
    // A pruned entry shares its source's decoder: no max-cosine pairs of its own.
    for pair in r["mcs"].as_array().unwrap() {
        assert!(!pair["a"].as_str().unwrap().contains("pruned"));
        assert!(!pair["b"].as_str().unwrap().contains("pruned"));
    }
}

#[test]
fn a_prune_count_that_leaves_nothing_or_removes_nothing_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dict = save(
        &random_topk(32, 64, 4, "blocks.1.hook_resid_post"),
        &tmp.path().join("d"),
    );
    for bad in ["0", "64", "8,100"] {
        let json = tmp.path().join("e.json");
        let o = eval(
            &[
                "--model",
                &tiny_llama(),
                "--sae",
                &dict,
                "--prune-densest",
                bad,
                "--tokens",
                "64",
            ],
            &json,
        );
        assert!(!o.status.success(), "{bad}");
        let err = stderr(&o);
        assert!(
            err.contains("--prune-densest") && err.contains("64 latents"),
            "{bad}: {err}"
        );
        assert!(!json.exists());
    }
}
