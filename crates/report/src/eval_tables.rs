//! The eval page's tables: every headline number per dictionary, the hooks' own baselines,
//! and the `params` block that says how the numbers were computed.

use crate::eval_file::{ContextualEval, DictionaryEval, EvalFile};
use crate::html::chip;
use crate::lenient::{plain, Num};
use crate::svg::{escape, series_colour};
use crate::table::{Better, Cell, Row, Table};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

type Pick = fn(&DictionaryEval) -> Num;

/// (key, label, which way is better, value).
type Metric = (&'static str, &'static str, Better, Pick);

const RECONSTRUCTION: [Metric; 9] = [
    (
        "fvu",
        "FVU (fraction of variance unexplained)",
        Better::Lower,
        |d| d.reconstruction.fvu,
    ),
    (
        "variance_explained",
        "variance explained",
        Better::Higher,
        |d| d.reconstruction.variance_explained,
    ),
    ("mse", "MSE per element", Better::Lower, |d| {
        d.reconstruction.mse
    }),
    (
        "sse_per_token",
        "squared error per token",
        Better::Lower,
        |d| d.reconstruction.sse_per_token,
    ),
    ("l2_loss", "L2 error per token", Better::Lower, |d| {
        d.reconstruction.l2_loss
    }),
    ("cossim", "cosine(x, x̂)", Better::Higher, |d| {
        d.reconstruction.cossim
    }),
    (
        "relative_norm",
        "‖x̂‖ / ‖x‖",
        Better::Neither,
        |d| d.reconstruction.relative_norm,
    ),
    ("shrinkage", "shrinkage γ", Better::Neither, |d| {
        d.reconstruction.shrinkage
    }),
    (
        "explained_variance_legacy",
        "explained variance, per-token (peers' legacy)",
        Better::Higher,
        |d| d.reconstruction.explained_variance_legacy,
    ),
];

const SPARSITY: [Metric; 3] = [
    (
        "l0",
        "L0 (latents firing per token)",
        Better::Neither,
        |d| d.sparsity.l0,
    ),
    (
        "l1",
        "L1 (sum of activations per token)",
        Better::Neither,
        |d| d.sparsity.l1,
    ),
    ("alive_pct", "alive latents %", Better::Higher, |d| {
        d.sparsity.alive_pct
    }),
];

const SPARSITY_COUNTS: [Metric; 2] = [
    ("dead", "dead latents", Better::Lower, |d| d.sparsity.dead),
    (
        "dead_window_tokens",
        "dead window (tokens)",
        Better::Neither,
        |d| d.sparsity.dead_window_tokens,
    ),
];

const DOWNSTREAM: [Metric; 11] = [
    (
        "ce_delta",
        "CE increase (spliced − clean)",
        Better::Lower,
        |d| d.downstream.ce_delta,
    ),
    ("ce_spliced", "CE spliced", Better::Lower, |d| {
        d.downstream.ce_spliced
    }),
    ("ce_clean", "CE clean", Better::Neither, |d| {
        d.downstream.ce_clean
    }),
    (
        "ce_random",
        "CE random perturbation",
        Better::Neither,
        |d| d.downstream.ce_random,
    ),
    ("ce_mean", "CE mean ablation", Better::Neither, |d| {
        d.downstream.ce_mean
    }),
    ("ce_zero", "CE zero ablation", Better::Neither, |d| {
        d.downstream.ce_zero
    }),
    (
        "loss_recovered",
        "loss recovered (vs zero)",
        Better::Higher,
        |d| d.downstream.loss_recovered,
    ),
    (
        "loss_recovered_mean_ablation",
        "loss recovered (vs mean)",
        Better::Higher,
        |d| d.downstream.loss_recovered_mean_ablation,
    ),
    ("kl", "KL(clean ‖ spliced)", Better::Lower, |d| {
        d.downstream.kl
    }),
    (
        "kl_random",
        "KL random perturbation",
        Better::Neither,
        |d| d.downstream.kl_random,
    ),
    ("kl_div_score", "KL score (peers')", Better::Higher, |d| {
        d.downstream.kl_div_score
    }),
];

const GEOMETRY: [Metric; 6] = [
    (
        "decoder_norm_mean",
        "decoder norm, mean",
        Better::Neither,
        |d| d.geometry.decoder_norm_mean,
    ),
    (
        "de_projection_mean",
        "D/E projection, mean (units of E‖x‖² = d)",
        Better::Neither,
        |d| d.de_projection_summary().0,
    ),
    (
        "de_projection_median",
        "D/E projection, median (units of E‖x‖² = d)",
        Better::Neither,
        |d| d.de_projection_summary().1,
    ),
    (
        "de_projection_raw_mean",
        "D/E projection raw ratio, mean",
        Better::Neither,
        |d| d.de_projection_raw_summary().0,
    ),
    (
        "de_projection_raw_median",
        "D/E projection raw ratio, median",
        Better::Neither,
        |d| d.de_projection_raw_summary().1,
    ),
    (
        "input_mean_sq_norm",
        "E‖x‖² of the input (D/E scale s² = d / E‖x‖²)",
        Better::Neither,
        |d| d.geometry.input_mean_sq_norm,
    ),
];

fn metric_rows(t: &mut Table, dicts: &[DictionaryEval], metrics: &[Metric], count: bool) {
    for (key, label, better, pick) in metrics {
        let cells = dicts
            .iter()
            .map(|d| match count {
                true => Cell::count(pick(d)),
                false => Cell::num(pick(d)),
            })
            .collect();
        t.row(Row {
            label: label.to_string(),
            key: key.to_string(),
            better: *better,
            cells,
        });
    }
}

/// Scalar keys a newer file adds to a group, shown under their own names.
fn extra_rows(
    t: &mut Table,
    dicts: &[DictionaryEval],
    extra: fn(&DictionaryEval) -> &BTreeMap<String, Value>,
) {
    let keys: BTreeSet<&String> = dicts
        .iter()
        .flat_map(|d| extra(d).iter())
        .filter(|(_, v)| !v.is_object() && !v.is_array())
        .map(|(k, _)| k)
        .collect();
    for key in keys {
        let cells = dicts
            .iter()
            .map(|d| match extra(d).get(key) {
                Some(Value::Number(n)) => Cell::num(Num(n.as_f64())),
                Some(v) => Cell::Text(plain(v)),
                None => Cell::num(Num(None)),
            })
            .collect();
        t.row(Row {
            label: key.clone(),
            key: key.clone(),
            better: Better::Neither,
            cells,
        });
    }
}

fn text_row(
    t: &mut Table,
    dicts: &[DictionaryEval],
    key: &str,
    label: &str,
    text: fn(&DictionaryEval) -> String,
) {
    t.row(Row {
        label: label.to_string(),
        key: key.to_string(),
        better: Better::Neither,
        cells: dicts.iter().map(|d| Cell::Text(text(d))).collect(),
    });
}

pub fn headline_table(eval: &EvalFile) -> String {
    let dicts = &eval.dictionaries;
    let mut head = vec!["metric".to_string()];
    head.extend(
        dicts
            .iter()
            .enumerate()
            .map(|(i, d)| chip(series_colour(i), d.label(), "")),
    );
    let mut t = Table::new("numbers", head);
    t.group("dictionary");
    text_row(&mut t, dicts, "architecture", "architecture", |d| {
        d.architecture.or("n/a").to_string()
    });
    text_row(&mut t, dicts, "hook", "hook", |d| {
        d.hook.or("n/a").to_string()
    });
    // Transcoders read one hook and are spliced at another.
    if dicts.iter().any(|d| d.input_hook.0.is_some()) {
        text_row(
            &mut t,
            dicts,
            "input_hook",
            "input hook (transcoder)",
            |d| d.input_hook.or("= hook").to_string(),
        );
    }
    // Pruned entries say what they lost; the rest read "none".
    if dicts.iter().any(|d| d.pruned.is_some()) {
        t.row(Row {
            label: "densest latents removed".into(),
            key: "pruned.count".into(),
            better: Better::Neither,
            cells: dicts
                .iter()
                .map(|d| match &d.pruned {
                    Some(p) => Cell::count(p.count),
                    None => Cell::Text("none".into()),
                })
                .collect(),
        });
        t.row(Row {
            label: "Σ density of the removed latents".into(),
            key: "pruned.densities_removed_sum".into(),
            better: Better::Neither,
            cells: dicts
                .iter()
                .map(|d| match &d.pruned {
                    Some(p) => Cell::num(p.densities_removed_sum),
                    None => Cell::Text("none".into()),
                })
                .collect(),
        });
    }
    t.row(Row {
        label: "latents (d_sae)".into(),
        key: "d_sae".into(),
        better: Better::Neither,
        cells: dicts.iter().map(|d| Cell::count(d.d_sae)).collect(),
    });
    t.row(Row {
        label: "input width (d_in)".into(),
        key: "d_in".into(),
        better: Better::Neither,
        cells: dicts.iter().map(|d| Cell::count(d.d_in)).collect(),
    });
    t.group("reconstruction");
    metric_rows(&mut t, dicts, &RECONSTRUCTION, false);
    extra_rows(&mut t, dicts, |d| &d.reconstruction.extra);
    t.group("sparsity");
    metric_rows(&mut t, dicts, &SPARSITY, false);
    metric_rows(&mut t, dicts, &SPARSITY_COUNTS, true);
    extra_rows(&mut t, dicts, |d| &d.sparsity.extra);
    if dicts.iter().any(|d| d.contextual.is_some()) {
        t.group("context (contextual dictionaries: codes carried along the window)");
        context_rows(&mut t, dicts);
    }
    t.group("downstream (dictionary spliced into the model)");
    metric_rows(&mut t, dicts, &DOWNSTREAM, false);
    extra_rows(&mut t, dicts, |d| &d.downstream.extra);
    t.group("geometry");
    metric_rows(&mut t, dicts, &GEOMETRY, false);
    extra_rows(&mut t, dicts, |d| &d.geometry.extra);
    t.to_html()
}

/// A contextual dictionary's context share and persistence; per-position ones read
/// "per-position".
fn context_rows(t: &mut Table, dicts: &[DictionaryEval]) {
    type Pick = fn(&ContextualEval) -> Num;
    let rows: [(&str, &str, Pick, bool); 6] = [
        (
            "contextual.context_share",
            "context share of the reconstruction",
            |c| c.context_share,
            false,
        ),
        (
            "contextual.l0_on",
            "codes on per position (L0 counts those paid for)",
            |c| c.l0_on,
            false,
        ),
        (
            "contextual.persistence.p_stay_median",
            "P(stay), median over latents",
            |c| c.persistence.p_stay_median,
            false,
        ),
        (
            "contextual.persistence.p_stay_pooled",
            "P(stay), pooled over firings",
            |c| c.persistence.p_stay_pooled,
            false,
        ),
        (
            "contextual.persistence.mean_run_median",
            "run length, median over latents",
            |c| c.persistence.mean_run_median,
            false,
        ),
        (
            "contextual.persistence.latents",
            "latents counted for persistence",
            |c| c.persistence.latents,
            true,
        ),
    ];
    for (key, label, pick, count) in rows {
        let cells = dicts
            .iter()
            .map(|d| match &d.contextual {
                Some(c) if count => Cell::count(pick(c)),
                Some(c) => Cell::num(pick(c)),
                None => Cell::Text("per-position".into()),
            })
            .collect();
        t.row(Row {
            label: label.to_string(),
            key: key.to_string(),
            better: Better::Neither,
            cells,
        });
    }
}

/// The model's own numbers per hook: what every dictionary at that hook is measured against.
pub fn hooks_table(eval: &EvalFile) -> String {
    let head = [
        "hook",
        "d",
        "CE clean",
        "CE zero ablation",
        "CE mean ablation",
        "KL zero",
        "KL mean",
    ]
    .map(escape)
    .to_vec();
    let mut t = Table::new("numbers", head);
    for h in &eval.hooks {
        t.row(Row {
            label: h.hook.or("n/a").to_string(),
            key: "hook".into(),
            better: Better::Neither,
            cells: vec![
                Cell::count(h.d),
                Cell::num(h.ce_clean),
                Cell::num(h.ce_zero),
                Cell::num(h.ce_mean),
                Cell::num(h.kl_zero),
                Cell::num(h.kl_mean),
            ],
        });
    }
    t.to_html()
}

/// The `params` block, every key as written.
pub fn params_table(params: &serde_json::Map<String, Value>) -> String {
    let mut out = String::from("<table class=\"params\"><tbody>\n");
    for (k, v) in params {
        let shown = match v.as_u64() {
            Some(n) => crate::format::count(n),
            None => plain(v),
        };
        out.push_str(&format!(
            "<tr><td>{}</td><td>{}</td></tr>\n",
            escape(k),
            escape(&shown)
        ));
    }
    out.push_str("</tbody></table>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[test]
    fn every_group_and_new_keys_appear() {
        let json = serde_json::json!({
            "params": {"positions_evaluated": 19843, "reconstruction_positions": "non-padding, <non-special>"},
            "dictionaries": [
                {"name": "a", "reconstruction": {"fvu": 0.1, "brand_new": 3}, "sparsity": {"dead": 12}},
                {"name": "b", "reconstruction": {"fvu": 0.2}, "downstream": {"ce_delta": "NaN"}}
            ]
        });
        let eval = EvalFile::deserialize(&json).unwrap();
        let html = headline_table(&eval);
        for needle in [
            "FVU",
            "brand_new",
            "dead latents",
            "CE increase",
            "D/E projection, mean",
        ] {
            assert!(html.contains(needle), "{needle}");
        }
        assert!(html.contains("<td class=\"best\">0.1</td>"));
        let params = params_table(&eval.params);
        assert!(params.contains("19,843") && params.contains("&lt;non-special&gt;"));
        assert!(
            !html.contains("input hook"),
            "no transcoder, no input hook row"
        );
        assert!(!html.contains("pruned.count"), "nothing pruned, no row");
    }

    #[test]
    fn pruned_entries_and_both_de_units_have_rows() {
        let json = serde_json::json!({"dictionaries": [
            {"name": "a", "geometry": {"de_projection_median": 1.25, "de_projection_raw_median": 42.5,
                                       "input_mean_sq_norm": 19500}},
            {"name": "a-pruned-8", "pruned": {"by": "density", "count": 8, "densities_removed_sum": 0.75},
             "geometry": {"de_projection_median": 1.25, "de_projection_raw_median": 42.5}},
            {"name": "old", "geometry": {"de_projection_median": 37.5}}
        ]});
        let html = headline_table(&EvalFile::deserialize(&json).unwrap());
        for key in [
            "pruned.count",
            "pruned.densities_removed_sum",
            "de_projection_raw_median",
            "input_mean_sq_norm",
        ] {
            assert!(html.contains(key), "{key}");
        }
        for value in ["0.75", "1.25", "42.5", "37.5", "19500"] {
            assert!(html.contains(value), "{value}: {html}");
        }
    }

    #[test]
    fn contextual_dictionaries_show_their_context_rows() {
        let json = serde_json::json!({"dictionaries": [
            {"name": "carry", "architecture": "carry", "contextual": {
                "context_share": 0.4907, "l0_on": 27.9,
                "persistence": {"latents": 75, "min_fires": 5, "p_stay_median": 0.9412,
                                "mean_run_median": 17.0, "p_stay_pooled": 0.9354}}},
            {"name": "topk", "architecture": "topk"}
        ]});
        let html = headline_table(&EvalFile::deserialize(&json).unwrap());
        for needle in [
            "context share",
            "0.4907",
            "P(stay), median",
            "0.9412",
            "per-position",
        ] {
            assert!(html.contains(needle), "{needle}: {html}");
        }
        let plain = serde_json::json!({"dictionaries": [{"name": "topk"}]});
        let html = headline_table(&EvalFile::deserialize(&plain).unwrap());
        assert!(!html.contains("context share"));
    }

    #[test]
    fn a_transcoder_shows_its_input_hook() {
        let json = serde_json::json!({"dictionaries": [
            {"name": "tc", "hook": "blocks.6.hook_mlp_out", "input_hook": "blocks.6.ln2.hook_normalized"},
            {"name": "sae", "hook": "blocks.6.hook_mlp_out"}
        ]});
        let html = headline_table(&EvalFile::deserialize(&json).unwrap());
        assert!(html.contains("input hook (transcoder)"), "{html}");
        assert!(html.contains("blocks.6.ln2.hook_normalized") && html.contains("= hook"));
    }
}
