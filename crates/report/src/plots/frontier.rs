//! Sparsity against fidelity across dictionaries: L0 vs FVU and L0 vs CE increase, each point
//! labelled with its dictionary, the best trade-offs per hook joined by a dashed line.

use super::Figure;
use crate::eval_file::DictionaryEval;
use crate::format;
use crate::lenient::Num;
use crate::svg::chart::{px, text_width, Margin};
use crate::svg::scale::{nice_extent, Scale};
use crate::svg::{series_colour, Anchor, Chart, TickFormat};

const WIDTH: f64 = 392.0;
const HEIGHT: f64 = 300.0;

struct Point<'a> {
    name: &'a str,
    hook: &'a str,
    colour: &'static str,
    l0: f64,
    y: f64,
}

/// Both frontier figures: fvu and ce_delta against L0.
pub fn figures(dicts: &[DictionaryEval]) -> Vec<Figure> {
    vec![
        figure(dicts, "frontier-fvu", "FVU", "FVU", |d| {
            d.reconstruction.fvu
        }),
        figure(
            dicts,
            "frontier-ce-delta",
            "CE increase when spliced (nats)",
            "CE increase",
            |d| d.downstream.ce_delta,
        ),
    ]
}

/// Points no other point beats on both axes (lower is better on both), by increasing L0.
fn pareto<'a>(points: &[&'a Point<'a>]) -> Vec<&'a Point<'a>> {
    let mut sorted = points.to_vec();
    sorted.sort_by(|a, b| a.l0.total_cmp(&b.l0).then(a.y.total_cmp(&b.y)));
    let mut best = f64::INFINITY;
    sorted
        .into_iter()
        .filter(|p| {
            let keep = p.y < best;
            best = best.min(p.y);
            keep
        })
        .collect()
}

fn axis_scale(values: &[f64], from: f64, to: f64) -> (Scale, bool) {
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    // Dictionaries of very different sparsity read better on a log axis.
    if lo > 0.0 && hi / lo >= 10.0 {
        return (Scale::log10(lo / 1.4, hi * 1.4, from, to), true);
    }
    let pad = if hi > lo {
        (hi - lo) * 0.12
    } else {
        lo.abs() * 0.2 + 1e-3
    };
    let (lo, hi) = nice_extent(lo - pad, hi + pad, 5);
    (Scale::linear(lo, hi, from, to), false)
}

fn figure(
    dicts: &[DictionaryEval],
    kind: &str,
    y_title: &str,
    metric: &str,
    pick: fn(&DictionaryEval) -> Num,
) -> Figure {
    // Pruned copies have their own plots (`pruning_paths.rs`); here they would bury the
    // dictionaries under labels.
    let pruned = dicts.iter().filter(|d| d.pruned.is_some()).count();
    let points: Vec<Point> = dicts
        .iter()
        .enumerate()
        .filter(|(_, d)| d.pruned.is_none())
        .filter_map(|(i, d)| {
            Some(Point {
                name: d.label(),
                hook: d.hook.or(""),
                colour: series_colour(i),
                l0: d.sparsity.l0.finite()?,
                y: pick(d).finite()?,
            })
        })
        .collect();
    let mut chart = Chart::new(kind, WIDTH, HEIGHT)
        .with_margin(Margin {
            left: 58.0,
            right: 20.0,
            top: 22.0,
            bottom: 44.0,
        })
        .describe(&format!("L0 against {metric} per dictionary"));
    let l0s: Vec<f64> = points.iter().map(|p| p.l0).collect();
    let ys: Vec<f64> = points.iter().map(|p| p.y).collect();
    let (x, x_log) = axis_scale(&l0s, chart.left(), chart.right());
    let (y, _) = axis_scale(&ys, chart.bottom(), chart.top());
    chart.y_axis(&y, y_title, TickFormat::Plain, 5);
    let x_title = if x_log { "L0 (log scale)" } else { "L0" };
    chart.x_axis(&x, x_title, TickFormat::Plain, 5);
    if points.is_empty() {
        chart.note(&format!("no dictionary has both L0 and {metric}"));
    }

    let mut hooks: Vec<&str> = points.iter().map(|p| p.hook).collect();
    hooks.sort_unstable();
    hooks.dedup();
    let mut lines = 0;
    for hook in &hooks {
        let group: Vec<&Point> = points.iter().filter(|p| p.hook == *hook).collect();
        let front = pareto(&group);
        if front.len() >= 2 {
            let d: Vec<String> = front
                .iter()
                .map(|p| format!("{},{}", px(x.map(p.l0)), px(y.map(p.y))))
                .collect();
            chart.raw(&format!(r#"<path class="frontier" d="M{}"/>"#, d.join("L")));
            lines += 1;
        }
    }

    let mut placed: Vec<(f64, f64, f64)> = Vec::new(); // label boxes: x, y, width
    for p in &points {
        let (cx, cy) = (x.map(p.l0), y.map(p.y));
        let tip = format!(
            "{}: L0 {}, {metric} {}",
            p.name,
            format::number(p.l0),
            format::number(p.y)
        );
        chart.circle(cx, cy, 5.0, p.colour, Some(&tip));
        let w = text_width(p.name, 11.0);
        let right_side = cx + 8.0 + w < chart.right();
        let lx = if right_side { cx + 8.0 } else { cx - 8.0 - w };
        let mut ly = cy + 4.0;
        // Move a label down past any label it would overlap.
        for _ in 0..8 {
            let hit = placed
                .iter()
                .any(|&(px0, py0, pw)| (ly - py0).abs() < 12.0 && lx < px0 + pw && px0 < lx + w);
            if !hit {
                break;
            }
            ly += 12.0;
        }
        placed.push((lx, ly, w));
        chart.text(lx, ly, p.name, Anchor::Start, "point-label");
    }

    let mut caption =
        format!("One point per dictionary at its mean L0 and {metric}; lower on both is better.");
    if hooks.len() > 1 {
        caption.push_str(" Dictionaries at different hooks are not comparable with each other.");
    }
    if lines > 0 {
        caption.push_str(" Dashed: the dictionaries no other one at their hook beats on both.");
    }
    if pruned > 0 {
        caption.push_str(&format!(
            " The {pruned} pruned entr{} are in the \"Pruning or penalty\" plots.",
            if pruned == 1 { "y" } else { "ies" }
        ));
    }
    let missing = dicts.len() - pruned - points.len();
    if missing > 0 {
        caption.push_str(&format!(
            " {missing} dictionar{} without both numbers not drawn.",
            if missing == 1 { "y" } else { "ies" }
        ));
    }
    if dicts.len() - pruned == 1 {
        caption.push_str(
            " With only one dictionary there is no frontier yet: this shows where it sits.",
        );
    }
    Figure {
        title: format!("L0 vs {metric}"),
        svg: chart.finish(),
        caption,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dict(name: &str, l0: f64, fvu: f64) -> DictionaryEval {
        serde_json::from_value(serde_json::json!({
            "name": name, "hook": "h",
            "sparsity": {"l0": l0}, "reconstruction": {"fvu": fvu}
        }))
        .unwrap()
    }

    #[test]
    fn pareto_front_skips_dominated_points() {
        let dicts = [
            dict("a", 10.0, 0.3),
            dict("b", 20.0, 0.35),
            dict("c", 40.0, 0.1),
        ];
        let f = &figures(&dicts)[0];
        assert_eq!(f.svg.matches("<circle").count(), 3);
        // The frontier runs a → c; b is beaten by a on both.
        assert_eq!(f.svg.matches(r#"class="frontier""#).count(), 1);
        let front = f.svg.split(r#"class="frontier" d=""#).nth(1).unwrap();
        assert_eq!(front.split('"').next().unwrap().matches('L').count(), 1);
        assert!(f.svg.contains(">b<"));
    }

    #[test]
    fn one_dictionary_gets_a_note_and_missing_numbers_are_counted() {
        let f = figures(&[dict("solo", 32.0, 0.1)]);
        assert!(f[0].caption.contains("only one dictionary"));
        assert!(f[1].caption.contains("1 dictionary without"));
        assert!(f[1].svg.contains("no dictionary has both"));
    }
}
