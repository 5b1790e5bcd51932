//! Two ways to a lower L0 (seed 002): removing a dictionary's densest latents after training
//! (`saelab eval --prune-densest`) or training with a larger penalty. Loss recovered and CE
//! increase against L0, one line through each dictionary's pruned copies (starting at the
//! dictionary itself) and one line through the dictionaries evaluated whole at the same hook.

use super::Figure;
use crate::eval_file::DictionaryEval;
use crate::format;
use crate::lenient::Num;
use crate::svg::legend::legend_chart;
use crate::svg::scale::{nice_extent, Scale};
use crate::svg::{series_colour, TickFormat};

const WIDTH: f64 = 560.0;
const HEIGHT: f64 = 300.0;
/// The trained-at-each-penalty path.
const PENALTY_COLOUR: &str = "#222222";

struct Path {
    name: String,
    colour: String,
    /// (L0, value, label), by increasing L0.
    points: Vec<(f64, f64, String)>,
}

/// The figures, when the file holds pruned entries; none otherwise.
pub fn figures(dicts: &[DictionaryEval]) -> Vec<Figure> {
    if !dicts.iter().any(|d| d.pruned.is_some()) {
        return Vec::new();
    }
    vec![
        figure(
            dicts,
            "pruning-loss-recovered",
            "loss recovered",
            |d| d.downstream.loss_recovered,
            true,
        ),
        figure(
            dicts,
            "pruning-ce-delta",
            "CE increase (nats)",
            |d| d.downstream.ce_delta,
            false,
        ),
    ]
}

/// The penalty path (whole dictionaries at the hook of the first pruned one) and one pruning
/// path per pruned dictionary (found by its path and hook).
fn paths(dicts: &[DictionaryEval], pick: fn(&DictionaryEval) -> Num) -> Vec<Path> {
    // The L0 axis is logarithmic: an entry pruned down to L0 0 has no place on it.
    let point = |d: &DictionaryEval| -> Option<(f64, f64, String)> {
        let l0 = d.sparsity.l0.finite().filter(|&l0| l0 > 0.0)?;
        Some((l0, pick(d).finite()?, d.label().to_string()))
    };
    let hook = dicts
        .iter()
        .find(|d| d.pruned.is_some())
        .map(|d| d.hook.or(""))
        .unwrap_or("");
    let whole: Vec<&DictionaryEval> = dicts
        .iter()
        .filter(|d| d.pruned.is_none() && d.hook.or("") == hook)
        .collect();
    let mut out = vec![Path {
        name: "trained at each penalty".into(),
        colour: PENALTY_COLOUR.into(),
        points: whole.iter().filter_map(|d| point(d)).collect(),
    }];
    for (i, source) in whole.iter().enumerate() {
        let copies: Vec<&DictionaryEval> = dicts
            .iter()
            .filter(|d| {
                d.pruned.is_some() && d.path.or("") == source.path.or("") && d.hook.or("") == hook
            })
            .collect();
        if copies.is_empty() {
            continue;
        }
        out.push(Path {
            name: format!("{} pruned", source.label()),
            colour: series_colour(i).into(),
            points: std::iter::once(*source)
                .chain(copies)
                .filter_map(point)
                .collect(),
        });
    }
    for p in &mut out {
        p.points.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    out
}

fn figure(
    dicts: &[DictionaryEval],
    kind: &str,
    metric: &str,
    pick: fn(&DictionaryEval) -> Num,
    higher_is_better: bool,
) -> Figure {
    let paths = paths(dicts, pick);
    let entries: Vec<(String, String)> = paths
        .iter()
        .map(|p| (p.colour.clone(), p.name.clone()))
        .collect();
    let mut chart = legend_chart(kind, WIDTH, HEIGHT, 18.0, &entries)
        .describe(&format!("{metric} against L0, pruned and trained"));
    let all: Vec<&(f64, f64, String)> = paths.iter().flat_map(|p| &p.points).collect();
    let l0_lo = all.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
    let l0_hi = all.iter().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
    let y_lo = all.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let y_hi = all.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    if all.is_empty() {
        chart.note(&format!("no entry has both L0 > 0 and {metric}"));
        return Figure {
            title: format!("Pruning or penalty: {metric} against L0"),
            svg: chart.finish(),
            caption: String::new(),
        };
    }
    let x = Scale::log10(l0_lo / 1.3, l0_hi * 1.3, chart.left(), chart.right());
    let pad = ((y_hi - y_lo) * 0.08).max(1e-3);
    let (lo, hi) = nice_extent(y_lo - pad, y_hi + pad, 5);
    let y = chart.y_linear(lo, hi);
    chart.y_axis(&y, metric, TickFormat::Plain, 5);
    chart.x_axis(&x, "L0 (log scale)", TickFormat::Plain, 5);
    for p in &paths {
        let pixels: Vec<(f64, f64)> = p
            .points
            .iter()
            .map(|&(l0, v, _)| (x.map(l0), y.map(v)))
            .collect();
        if pixels.len() >= 2 {
            chart.line(&pixels, &p.colour, Some(&p.name));
        }
        for (l0, v, label) in &p.points {
            let tip = format!(
                "{label}: L0 {}, {metric} {}",
                format::number(*l0),
                format::number(*v)
            );
            chart.circle(x.map(*l0), y.map(*v), 4.0, &p.colour, Some(&tip));
        }
    }
    let better = if higher_is_better { "higher" } else { "lower" };
    let mut caption = format!(
        "To reach a lower L0: drop a dictionary's densest latents (coloured lines, from the \
         dictionary itself through its pruned copies) or train another at a larger penalty \
         (black line through the whole dictionaries at the same hook). At equal L0, {better} \
         is better. Hover a point for its entry."
    );
    let zero = dicts
        .iter()
        .filter(|d| d.sparsity.l0.finite() == Some(0.0))
        .count();
    if zero > 0 {
        caption.push_str(&format!(
            " {zero} entr{} pruned down to L0 0 not drawn (log axis).",
            if zero == 1 { "y" } else { "ies" }
        ));
    }
    Figure {
        title: format!("Pruning or penalty: {metric} against L0"),
        svg: chart.finish(),
        caption,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, l0: f64, lr: f64, pruned: bool) -> DictionaryEval {
        let path = name.split("-pruned").next().unwrap();
        let mut v = serde_json::json!({
            "name": name, "path": format!("/d/{path}"), "hook": "h",
            "sparsity": {"l0": l0},
            "downstream": {"loss_recovered": lr, "ce_delta": 1.0 - lr}
        });
        if pruned {
            v["pruned"] = serde_json::json!({"by": "density", "count": 8});
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn one_penalty_path_and_one_pruning_path_per_pruned_dictionary() {
        let dicts = [
            entry("a", 10.0, 0.6, false),
            entry("b", 40.0, 0.8, false),
            entry("b-pruned-8", 30.0, 0.7, true),
            entry("b-pruned-16", 20.0, 0.5, true),
        ];
        let p = paths(&dicts, |d| d.downstream.loss_recovered);
        assert_eq!(p.len(), 2);
        let l0s = |i: usize| p[i].points.iter().map(|q| q.0).collect::<Vec<_>>();
        assert_eq!(l0s(0), [10.0, 40.0], "whole dictionaries only");
        assert_eq!(l0s(1), [20.0, 30.0, 40.0], "b and its copies, by L0");
        assert_eq!(p[1].name, "b pruned");
        let figs = figures(&dicts);
        assert_eq!(figs.len(), 2);
        assert!(figs[0].svg.contains("b-pruned-16: L0 20"));
    }

    #[test]
    fn entries_at_l0_zero_are_left_off_the_log_axis() {
        let dicts = [
            entry("b", 40.0, 0.8, false),
            entry("b-pruned-8", 0.0, 0.3, true),
            entry("b-pruned-4", 20.0, 0.5, true),
        ];
        let figs = figures(&dicts);
        assert!(figs[0].svg.contains("b-pruned-4: L0 20"));
        assert!(!figs[0].svg.contains("b-pruned-8:"));
        assert!(figs[0].caption.contains("1 entry pruned down to L0 0"));
    }

    #[test]
    fn nothing_pruned_no_figure() {
        assert!(figures(&[entry("a", 10.0, 0.6, false)]).is_empty());
    }
}
