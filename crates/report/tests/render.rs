//! Rendering without a browser: odd and edge-case inputs give a page, never a panic.

mod common;

use serde_json::json;

fn marks(html: &str, kind: &str) -> usize {
    html.split("<svg class=\"plot\"")
        .filter(|svg| svg.starts_with(&format!(" data-plot=\"{kind}\"")))
        .map(|svg| svg.matches("class=\"mark").count())
        .sum()
}

#[test]
fn realistic_eval_has_every_plot() {
    let html = saelab_report::render_eval(&common::eval_json()).unwrap();
    for kind in [
        "density-histogram",
        "l0-histogram",
        "de-projection",
        "ce-bars",
        "frontier-fvu",
        "frontier-ce-delta",
        "mcs-histogram",
    ] {
        assert!(marks(&html, kind) > 0, "{kind}");
    }
    assert!(html.contains("every 5th latent: 3,277 of 16,384 drawn"));
    assert!(html.contains("b_enc is n/a for this dictionary"));
    assert!(html.contains("ce_positions_counted") && html.contains("19,686"));
    // Under a few MB even with 24k latents.
    assert!(html.len() < 4_000_000, "{} bytes", html.len());
}

#[test]
fn nulls_nan_and_empty_histograms_render_as_na() {
    let eval = json!({
        "format": "saelab-eval", "version": 1, "model": "m <b>", "params": {},
        "dictionaries": [{
            "name": "only<one>", "architecture": "gated", "d_sae": 3,
            "reconstruction": {"fvu": null, "mse": "NaN"},
            "sparsity": {"l0": "inf", "dead": null,
                "density_histogram": {"bin_width": 0.25, "bins": []},
                "l0_histogram": {"bins": [{"lo": null, "hi": 1, "count": 3}]}},
            "downstream": {"ce_clean": null, "ce_spliced": "NaN"},
            "latents": {"density": [null, "NaN", 0.1], "de_projection": [1.0], "b_enc": null}
        }],
        "mcs": [{"a": "only<one>", "b": "x", "histogram": null}]
    });
    let html = saelab_report::render_eval(&eval).unwrap();
    assert!(html.contains("n/a"));
    assert!(html.contains("no data"));
    assert!(html.contains("only one dictionary"));
    assert!(html.contains("only&lt;one&gt;") && !html.contains("only<one>"));
    assert!(html.contains("m &lt;b&gt;"));
    assert_eq!(marks(&html, "l0-histogram"), 0);
}

#[test]
fn empty_and_foreign_files() {
    let html = saelab_report::render_eval(&json!({"format": "saelab-eval"})).unwrap();
    assert!(html.contains("holds no dictionaries"));
    // Any JSON that does not say it is an eval is refused, not drawn as an empty page.
    for foreign in [
        json!({}),
        json!([]),
        json!(null),
        json!(3),
        json!({"run": {"batch": 4096}, "total_steps": 10}),
        json!({"format": 1}),
        json!({"format": "something-else"}),
    ] {
        let err = saelab_report::render_eval(&foreign).unwrap_err();
        assert!(
            matches!(err, saelab_report::ReportError::NotAnEval(_)),
            "{foreign}: {err}"
        );
    }
    let err = saelab_report::render_eval(&json!({"format": "something-else"})).unwrap_err();
    assert!(err.to_string().contains("something-else"));
    let err = saelab_report::render_eval(&json!({"format": "saelab-eval", "dictionaries": 5}))
        .unwrap_err();
    assert!(err.to_string().contains("saelab-eval shape"), "{err}");
}

#[test]
fn file_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("broken.json");
    std::fs::write(&bad, "{not json").unwrap();
    let err = saelab_report::write_eval_report(&bad, &dir.path().join("o.html")).unwrap_err();
    assert!(err.to_string().contains("broken.json"), "{err}");
    let config = dir.path().join("config.json");
    std::fs::write(&config, r#"{"run": {}, "total_steps": 3}"#).unwrap();
    let err = saelab_report::write_eval_report(&config, &dir.path().join("o.html")).unwrap_err();
    assert!(err.to_string().contains("config.json"), "{err}");
    assert!(!dir.path().join("o.html").exists());
    let err = saelab_report::render_run(&dir.path().join("no-run")).unwrap_err();
    assert!(err.to_string().contains("metrics.jsonl"), "{err}");
}

#[test]
fn run_report_without_summary_or_eval() {
    let dir = tempfile::tempdir().unwrap();
    common::write_run(dir.path());
    for f in ["summary.json", "eval.json", "config.json"] {
        std::fs::remove_file(dir.path().join(f)).unwrap();
    }
    let html = saelab_report::render_run(dir.path()).unwrap();
    assert!(html.contains("no summary.json"));
    assert!(marks(&html, "training-fvu") > 0);
    assert_eq!(marks(&html, "de-projection"), 0);
    // A broken eval.json becomes a notice, the rest of the page stays.
    std::fs::write(dir.path().join("eval.json"), "[1,").unwrap();
    let html = saelab_report::render_run(dir.path()).unwrap();
    assert!(html.contains("eval.json is not valid JSON"));
}
