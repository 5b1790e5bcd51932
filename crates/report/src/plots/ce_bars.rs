//! Cross-entropy with each dictionary spliced in, next to the clean model and the baselines
//! (random perturbation of the same cosine and norm, mean and zero ablation).

use super::Figure;
use crate::eval_file::{DictionaryEval, EvalFile, HookBaseline};
use crate::format;
use crate::lenient::Num;
use crate::svg::chart::px;
use crate::svg::legend::legend_chart;
use crate::svg::scale::nice_extent;
use crate::svg::{Anchor, TickFormat};

// Wide enough for a three-digit value label over each bar.
const BAR: f64 = 21.0;
const GAP: f64 = 1.0;
const GROUP_GAP: f64 = 20.0;

/// The five bars of a group: label, colour.
const KINDS: [(&str, &str); 5] = [
    ("clean", "#59a14f"),
    ("spliced", "#4e79a7"),
    ("random", "#f28e2b"),
    ("mean-ablation", "#b07aa1"),
    ("zero-ablation", "#e15759"),
];

/// A dictionary's five values; clean, mean and zero fall back to its hook's baselines.
fn values(d: &DictionaryEval, hooks: &[HookBaseline]) -> [Num; 5] {
    let hook = hooks
        .iter()
        .find(|h| h.hook.0.is_some() && h.hook == d.hook);
    let or_hook = |own: Num, pick: fn(&HookBaseline) -> Num| match (own.0, hook) {
        (None, Some(h)) => pick(h),
        _ => own,
    };
    let s = &d.downstream;
    [
        or_hook(s.ce_clean, |h| h.ce_clean),
        s.ce_spliced,
        s.ce_random,
        or_hook(s.ce_mean, |h| h.ce_mean),
        or_hook(s.ce_zero, |h| h.ce_zero),
    ]
}

/// `text` cut to fit `width` pixels, with an ellipsis when cut.
fn fit(text: &str, width: f64) -> String {
    let max = (width / (11.0 * 0.6)).floor().max(3.0) as usize;
    if text.chars().count() <= max {
        return text.to_string();
    }
    let cut: String = text.chars().take(max - 1).collect();
    format!("{cut}…")
}

pub fn figure(eval: &EvalFile) -> Figure {
    let dicts = &eval.dictionaries;
    let group = KINDS.len() as f64 * (BAR + GAP) + GROUP_GAP;
    let width = (58.0 + 16.0 + dicts.len() as f64 * group).max(440.0);
    let entries: Vec<(String, String)> = KINDS
        .iter()
        .map(|(name, colour)| (colour.to_string(), name.to_string()))
        .collect();
    let mut chart = legend_chart("ce-bars", width, 270.0, 16.0, &entries)
        .describe("cross-entropy per dictionary");

    let all: Vec<[Num; 5]> = dicts.iter().map(|d| values(d, &eval.hooks)).collect();
    let max = all
        .iter()
        .flatten()
        .filter_map(|v| v.finite())
        .fold(0.0f64, f64::max);
    let (_, hi) = nice_extent(0.0, max.max(1e-9) * 1.08, 5);
    let y = chart.y_linear(0.0, hi);
    chart.y_axis(&y, "cross-entropy (nats)", TickFormat::Plain, 5);
    let axis_y = chart.bottom();
    chart.raw(&format!(
        r#"<line class="axis" x1="{}" y1="{y}" x2="{}" y2="{y}"/>"#,
        px(chart.left()),
        px(chart.right()),
        y = px(axis_y)
    ));
    if dicts.is_empty() {
        chart.note("no dictionaries");
    }
    let inner = KINDS.len() as f64 * (BAR + GAP) - GAP;
    let span = chart.right() - chart.left();
    let start = chart.left() + (span - dicts.len() as f64 * group + GROUP_GAP) / 2.0;
    for (i, (d, vals)) in dicts.iter().zip(&all).enumerate() {
        let gx = start + i as f64 * group;
        for (j, ((kind, colour), v)) in KINDS.iter().zip(vals).enumerate() {
            let x = gx + j as f64 * (BAR + GAP);
            match v.finite() {
                Some(v) if v > 0.0 => {
                    let tip = format!("{}, {kind}: {} nats", d.label(), format::number(v));
                    chart.rect(x, y.map(v), BAR, axis_y - y.map(v), colour, Some(&tip));
                    let label = format::short(v);
                    chart.text(
                        x + BAR / 2.0,
                        y.map(v) - 3.0,
                        &label,
                        Anchor::Middle,
                        "value",
                    );
                }
                Some(v) => {
                    let label = format::short(v);
                    chart.text(x + BAR / 2.0, axis_y - 3.0, &label, Anchor::Middle, "value");
                }
                None => chart.text(x + BAR / 2.0, axis_y - 3.0, "n/a", Anchor::Middle, "value"),
            }
        }
        let name = fit(d.label(), inner + GROUP_GAP - 6.0);
        chart.text(
            gx + inner / 2.0,
            axis_y + 15.0,
            &name,
            Anchor::Middle,
            "tick",
        );
    }
    chart.x_title("dictionary");

    let counted = eval
        .params
        .get("ce_positions_counted")
        .and_then(|v| v.as_f64())
        .map(|n| format!(" over {} positions", format::count(n as u64)))
        .unwrap_or_default();
    Figure {
        title: "Cross-entropy with the dictionary spliced in".into(),
        svg: chart.finish(),
        caption: format!(
            "Mean next-token cross-entropy in nats{counted}: the clean model; with the \
             reconstruction spliced in; with a random perturbation of the same cosine and norm; \
             with the activation replaced by its mean; and by zero. Spliced should sit near clean \
             and far below random."
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[test]
    fn five_bars_per_dictionary_with_hook_fallbacks_and_na() {
        let json = serde_json::json!({
            "hooks": [{"hook": "h", "ce_clean": 2.8, "ce_zero": 9.0, "ce_mean": 6.0}],
            "dictionaries": [
                {"name": "a", "hook": "h", "downstream": {"ce_spliced": 3.1, "ce_random": 5.0}},
                {"name": "b", "hook": "h", "downstream": {"ce_spliced": null, "ce_random": 4.0}}
            ]
        });
        let eval = EvalFile::deserialize(&json).unwrap();
        let f = figure(&eval);
        assert_eq!(f.svg.matches(r#"class="mark""#).count(), 9);
        assert_eq!(f.svg.matches(">n/a<").count(), 1);
    }

    #[test]
    fn long_names_are_cut() {
        assert_eq!(fit("short", 100.0), "short");
        assert!(fit("a-very-long-dictionary-name-indeed", 60.0).ends_with('…'));
    }
}
