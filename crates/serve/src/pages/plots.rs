//! Inline SVG bar charts (no script, no external assets). Every bar carries its exact count
//! in a `<title>` (the browser's tooltip).

use maud::{html, Markup};

use super::format::power_of_ten;

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 210.0;
const LEFT: f64 = 48.0;
const RIGHT: f64 = 30.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 40.0;

pub struct Bars<'a> {
    pub counts: &'a [u64],
    /// A tooltip per bar (its range and count).
    pub titles: Vec<String>,
    /// Labels under the x axis at bar boundaries: (boundary index 0..=bars, text).
    pub ticks: Vec<(usize, String)>,
    pub x_label: &'a str,
    pub class: &'a str,
}

pub fn bars(b: &Bars<'_>) -> Markup {
    let n = b.counts.len().max(1);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let max = b.counts.iter().copied().max().unwrap_or(0).max(1) as f64;
    let bar_w = plot_w / n as f64;
    let x_at = |i: usize| LEFT + i as f64 * bar_w;
    html! {
        svg class=(format!("plot {}", b.class)) width=(WIDTH) height=(HEIGHT) viewBox=(format!("0 0 {WIDTH} {HEIGHT}"))
            xmlns="http://www.w3.org/2000/svg" role="img" {
            line x1=(LEFT) y1=(TOP + plot_h) x2=(WIDTH - RIGHT) y2=(TOP + plot_h) stroke="#98a2b3" {}
            line x1=(LEFT) y1=(TOP) x2=(LEFT) y2=(TOP + plot_h) stroke="#98a2b3" {}
            text x=(LEFT - 6.0) y=(TOP + 4.0) text-anchor="end" { (max as u64) }
            text x=(LEFT - 6.0) y=(TOP + plot_h) text-anchor="end" { "0" }
            @for (i, &c) in b.counts.iter().enumerate() {
                @let h = c as f64 / max * plot_h;
                rect.bar x=(fmt(x_at(i) + 0.5)) y=(fmt(TOP + plot_h - h)) width=(fmt((bar_w - 1.0).max(0.5)))
                    height=(fmt(h)) fill="#4f7bd9" {
                    title { (b.titles.get(i).map_or("", String::as_str)) }
                }
            }
            @for (i, label) in &b.ticks {
                line x1=(fmt(x_at(*i))) y1=(TOP + plot_h) x2=(fmt(x_at(*i))) y2=(TOP + plot_h + 4.0) stroke="#98a2b3" {}
                text x=(fmt(x_at(*i))) y=(TOP + plot_h + 16.0) text-anchor="middle" { (label) }
            }
            text x=(LEFT + plot_w / 2.0) y=(HEIGHT - 6.0) text-anchor="middle" { (b.x_label) }
        }
    }
}

/// Ticks for a log axis whose bar boundaries sit at `log10_edges`: one at every boundary on
/// a power of ten (every other one past 10 of them), labelled `10⁻⁴` ... `1` ... `10⁴`. With
/// fewer than two such boundaries, the two ends, in one scientific format.
pub fn log_ticks(log10_edges: &[f64]) -> Vec<(usize, String)> {
    let powers: Vec<(usize, i32)> = log10_edges
        .iter()
        .enumerate()
        .filter(|(_, e)| e.is_finite() && (*e - e.round()).abs() < 1e-6)
        .map(|(i, e)| (i, e.round() as i32))
        .collect();
    if powers.len() >= 2 {
        let step = if powers.len() > 10 { 2 } else { 1 };
        return powers
            .iter()
            .step_by(step)
            .map(|&(i, e)| (i, power_of_ten(e)))
            .collect();
    }
    match (log10_edges.first(), log10_edges.last()) {
        (Some(&first), Some(&last)) if log10_edges.len() >= 2 => {
            [(0, first), (log10_edges.len() - 1, last)]
                .into_iter()
                .filter(|(_, e)| e.is_finite())
                .map(|(i, e)| (i, format!("{:.1e}", 10f64.powf(e))))
                .collect()
        }
        _ => Vec::new(),
    }
}

fn fmt(v: f64) -> String {
    format!("{v:.1}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_ticks_sit_on_powers_of_ten_in_one_format() {
        // An activation histogram's edges: 1e-4 to 1e4, ten bins a decade.
        let edges: Vec<f64> = (0..=80).map(|i| -4.0 + f64::from(i) / 10.0).collect();
        let ticks = log_ticks(&edges);
        let at: Vec<usize> = ticks.iter().map(|t| t.0).collect();
        assert_eq!(at, [0, 10, 20, 30, 40, 50, 60, 70, 80]);
        assert_eq!(ticks[0].1, "10⁻⁴");
        assert_eq!(ticks[4].1, "1");
        assert_eq!(ticks[8].1, "10⁴");
        // Many decades: every other one.
        let wide: Vec<f64> = (0..=48).map(|i| -12.0 + f64::from(i) / 4.0).collect();
        assert_eq!(log_ticks(&wide).len(), 7);
        // No power of ten inside: the ends.
        let narrow = [0.1f64.log10(), 0.2f64.log10(), 0.3f64.log10()];
        let ends: Vec<String> = log_ticks(&narrow).into_iter().map(|t| t.1).collect();
        assert_eq!(ends, ["1.0e-1", "3.0e-1"]);
    }
}
