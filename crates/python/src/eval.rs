//! `saelab._saelab.evaluate`: every metric of METRICS.md for dictionaries on the first tokens
//! of a corpus, as `saelab eval` computes them, returned as the same JSON document (a dict).

use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::PyDict;
use saelab_data::{windows, Packing, WindowConfig};
use saelab_eval::dictionary_hooks::dictionary_hooks;
use saelab_eval::tokens::first_tokens;
use saelab_eval::{EvalDictionary, EvalOptions};
use saelab_model::HookPoint;

use crate::data::Corpus;
use crate::errors::{bad_type, bad_value, OrRaise};
use crate::json;
use crate::model::Model;
use crate::sae::Sae;

/// Evaluates `saes` (a dict of name → `Sae`) with `model` on the first `tokens` tokens of
/// `corpus` and returns the results as a dict (the `saelab eval --json` document). `hook`
/// overrides the dictionaries' own hooks; `json` and `report` write the document and its
/// page. `progress(pass_, done, total)` is called as windows are done (pass 1: hook means,
/// pass 2: the metrics). `prune_densest` adds, per dictionary and count N, an entry
/// `NAME-pruned-N` without its N densest latents.
#[pyfunction]
#[pyo3(signature = (model, saes, corpus, tokens, ctx = saelab_data::DEFAULT_WINDOW_LEN, packing = "packed", batch = 8, dead_window = 1_000_000, include_special = false, seed = 0, hook = None, json_path = None, report = None, progress = None, prune_densest = Vec::new()))]
#[allow(clippy::too_many_arguments)]
pub fn evaluate<'py>(
    py: Python<'py>,
    model: &Model,
    saes: &Bound<'py, PyDict>,
    corpus: &Corpus,
    tokens: u64,
    ctx: usize,
    packing: &str,
    batch: usize,
    dead_window: u64,
    include_special: bool,
    seed: u64,
    hook: Option<&str>,
    json_path: Option<PathBuf>,
    report: Option<PathBuf>,
    progress: Option<Py<PyAny>>,
    prune_densest: Vec<usize>,
) -> PyResult<Bound<'py, PyAny>> {
    if ctx < 2 {
        return Err(bad_value(
            "ctx",
            format!("= {ctx}: a window needs at least 2 tokens"),
        ));
    }
    for (name, value) in [
        ("tokens", tokens),
        ("batch", batch as u64),
        ("dead_window", dead_window),
    ] {
        if value == 0 {
            return Err(bad_value(name, "must be positive"));
        }
    }
    if saes.is_empty() {
        return Err(bad_value("saes", "is empty; give at least one dictionary"));
    }
    let loaded = &model.inner;
    let cfg = &loaded.model.cfg;
    let override_hook = hook
        .map(|h| HookPoint::parse(h, cfg).map_err(|e| bad_value("hook", e)))
        .transpose()?;
    let mut dictionaries = Vec::new();
    for (key, value) in saes.iter() {
        let name: String = key
            .extract()
            .map_err(|_| bad_type("saes", "keys must be names (str)"))?;
        let sae = value
            .cast::<Sae>()
            .map_err(|_| bad_type("saes", format!("[{name:?}] is not a saelab.Sae")))?;
        let sae = sae.get().inner.clone();
        let (input, output) = dictionary_hooks(&sae, None, override_hook, cfg, "`hook`")
            .map_err(|e| bad_value("saes", format!("[{name:?}]: {e:#}")))?;
        let entry = EvalDictionary {
            // A transcoder is compared and spliced at its output hook.
            input_hook: output.map(|_| input),
            hook: output.unwrap_or(input),
            path: name.clone(),
            name,
            sae: sae.into(),
            prune: None,
        };
        let pruned = saelab_eval::pruned_copies(&entry, &prune_densest, "prune_densest")
            .map_err(|e| bad_value("prune_densest", e))?;
        dictionaries.push(entry);
        dictionaries.extend(pruned);
    }
    // Before the work, so that an unusable place fails at once.
    for path in json_path.iter().chain(report.iter()) {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| bad_value("json", format!("{}: {e}", dir.display())))?;
        }
    }
    let packing: Packing = packing
        .parse()
        .map_err(|e: saelab_data::DataError| bad_value("packing", e))?;
    let options = EvalOptions {
        include_special,
        dead_window,
        batch_windows: batch,
        random_seed: seed,
    };
    let mut failed: Option<PyErr> = None;
    let results = py.detach(|| -> anyhow::Result<saelab_eval::EvalResults> {
        let config = WindowConfig::for_tokenizer(&loaded.tokenizer, ctx, packing);
        let stream = windows(corpus.inner.documents(), &loaded.tokenizer, config)?;
        let eval_windows = first_tokens(stream, tokens)?;
        let mut results = saelab_eval::evaluate(
            &loaded.model,
            &eval_windows,
            &dictionaries,
            &options,
            &mut |p| {
                if let (Some(f), None) = (&progress, &failed) {
                    failed = Python::attach(|py| {
                        f.call1(py, (p.pass, p.windows_done, p.windows_total)).err()
                    });
                }
            },
        )?;
        results.model = loaded.name.clone();
        results.corpus = corpus.inner.name.clone();
        results.params.tokens_requested = Some(tokens);
        Ok(results)
    });
    if let Some(e) = failed {
        return Err(e);
    }
    let results = results.or_raise()?;
    let value = serde_json::to_value(&results).or_raise()?;
    if let Some(path) = &json_path {
        let bytes = serde_json::to_vec_pretty(&value).or_raise()?;
        saelab_train::write_atomic(path, &bytes).or_raise()?;
        saelab_report::write_eval_json_report(path, report.as_deref()).or_raise()?;
    } else if report.is_some() {
        return Err(bad_value(
            "report",
            "needs `json_path`: the page is made from the written results",
        ));
    }
    json::to_python(py, &value)
}
