//! Inline SVG bar charts (no script, no external assets). Every bar carries its exact count
//! in a `<title>` (the browser's tooltip).

use maud::{html, Markup};

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

fn fmt(v: f64) -> String {
    format!("{v:.1}")
}
