//! A histogram of counts over bins, optionally with a separate bar (dead latents) at the left
//! and dashed guides. Density, L0 and MCS plots all draw through this.

use crate::format;
use crate::svg::chart::Margin;
use crate::svg::colour::NEUTRAL;
use crate::svg::scale::{nice_extent, Scale};
use crate::svg::{Anchor, Chart, TickFormat};

pub const WIDTH: f64 = 400.0;
pub const HEIGHT: f64 = 240.0;

pub struct HistogramPlot<'a> {
    pub kind: &'a str,
    pub dictionary: Option<&'a str>,
    /// (lo, hi, count), finite, lo < hi.
    pub bins: &'a [(f64, f64, f64)],
    /// A count drawn apart, left of the axis, labelled with `apart_label`.
    pub apart: Option<f64>,
    pub apart_label: &'a str,
    pub x_domain: (f64, f64),
    pub x_title: &'a str,
    pub x_format: TickFormat,
    /// What is counted, for hover texts ("latents", "tokens").
    pub unit: &'a str,
    pub colour: &'a str,
    /// Dashed vertical lines at data values, with labels.
    pub guides: Vec<(f64, String)>,
    /// Bins count whole numbers (bin [32, 33) holds 32): bars are centred on them.
    pub discrete: bool,
}

/// Room at the plot area's left for the separate bar, clear of the first tick label.
pub const APART_BAND: f64 = 52.0;
/// Where the separate bar (or band) starts, from the plot area's left, and its width.
pub const APART_X: f64 = 6.0;
pub const APART_WIDTH: f64 = 20.0;

pub fn draw(p: &HistogramPlot) -> String {
    let mut chart = Chart::new(p.kind, WIDTH, HEIGHT).with_margin(Margin {
        left: 58.0,
        right: 16.0,
        top: 22.0,
        bottom: 44.0,
    });
    if let Some(name) = p.dictionary {
        chart = chart.data("dictionary", name);
    }
    let apart = p.apart.filter(|n| n.is_finite() && *n >= 0.0);
    let x_from = chart.left() + if apart.is_some() { APART_BAND } else { 0.0 };
    let x = Scale::linear(p.x_domain.0, p.x_domain.1, x_from, chart.right());
    let max = p
        .bins
        .iter()
        .map(|b| b.2)
        .chain(apart)
        .fold(0.0f64, f64::max);
    let (_, y_hi) = nice_extent(0.0, max.max(1.0), 4);
    let y = chart.y_linear(0.0, y_hi);
    chart.y_axis(&y, p.unit, TickFormat::Si, 4);
    chart.x_axis(&x, p.x_title, p.x_format, 6);
    if p.bins.is_empty() && apart.unwrap_or(0.0) == 0.0 {
        chart.note("no data");
        return chart.finish();
    }
    for &(lo, hi, n) in p.bins {
        let shift = if p.discrete { 0.5 } else { 0.0 };
        let (x0, x1) = (x.map_clamped(lo - shift), x.map_clamped(hi - shift));
        let inset = if x1 - x0 > 3.0 { 0.5 } else { 0.0 };
        let range = match p.discrete {
            true if hi - lo <= 1.0 => p.x_format.label(lo),
            true => format!("{} to {}", p.x_format.label(lo), p.x_format.label(hi - 1.0)),
            false => format!("{} to {}", p.x_format.label(lo), p.x_format.label(hi)),
        };
        let tip = format!("{range}: {} {}", format::count(n as u64), p.unit);
        // At least a pixel and a half wide, so a lone narrow bin stays visible.
        let w = (x1 - x0 - 2.0 * inset).max(1.5);
        chart.rect(
            x0 + inset,
            y.map(n),
            w,
            y.map(0.0) - y.map(n),
            p.colour,
            Some(&tip),
        );
    }
    if let Some(n) = apart {
        let x0 = chart.left() + APART_X;
        let tip = format!("{}: {} {}", p.apart_label, format::count(n as u64), p.unit);
        let h = y.map(0.0) - y.map(n);
        chart.rect(x0, y.map(n), APART_WIDTH, h, NEUTRAL, Some(&tip));
        chart.x_tick(x0 + APART_WIDTH / 2.0, p.apart_label);
        chart.text(
            x0 + APART_WIDTH / 2.0,
            y.map(n) - 4.0,
            &format::si(n),
            Anchor::Middle,
            "value",
        );
    }
    for (v, label) in &p.guides {
        if x.contains(*v) {
            chart.v_guide(x.map(*v), label, "#333");
        }
    }
    chart.finish()
}

/// The span of all bins' edges, pushed out to whole units of `round_to`; `fallback` if none.
pub fn bins_extent(
    all: impl Iterator<Item = (f64, f64)>,
    round_to: f64,
    fallback: (f64, f64),
) -> (f64, f64) {
    let (lo, hi) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), (a, b)| {
        (lo.min(a), hi.max(b))
    });
    if !(lo.is_finite() && hi.is_finite()) {
        return fallback;
    }
    (
        (lo / round_to).floor() * round_to,
        (hi / round_to).ceil() * round_to,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plot<'a>(bins: &'a [(f64, f64, f64)], apart: Option<f64>) -> HistogramPlot<'a> {
        HistogramPlot {
            kind: "t",
            dictionary: Some("d"),
            bins,
            apart,
            apart_label: "dead",
            x_domain: (-5.0, 0.0),
            x_title: "x",
            x_format: TickFormat::Exponent,
            unit: "latents",
            colour: "#000",
            guides: vec![(-2.0, "g".into())],
            discrete: false,
        }
    }

    #[test]
    fn bars_and_the_separate_bar_are_marks() {
        let bins = [(-3.0, -2.75, 10.0), (-2.75, -2.5, 0.0), (-2.5, -2.25, 4.0)];
        let svg = draw(&plot(&bins, Some(3.0)));
        // Two non-empty bins and the dead bar; the empty bin draws nothing.
        assert_eq!(svg.matches(r#"class="mark""#).count(), 3);
        assert!(svg.contains(">dead<") && svg.contains("10⁻³ to"));
    }

    #[test]
    fn an_empty_histogram_says_so() {
        let svg = draw(&plot(&[], None));
        assert!(svg.contains("no data"));
        assert_eq!(svg.matches(r#"class="mark""#).count(), 0);
    }

    #[test]
    fn extent_rounds_outwards() {
        let e = bins_extent([(-4.3, -4.05), (-1.2, -0.95)].into_iter(), 1.0, (0.0, 1.0));
        assert_eq!(e, (-5.0, 0.0));
        assert_eq!(
            bins_extent(std::iter::empty(), 1.0, (-6.0, 0.0)),
            (-6.0, 0.0)
        );
    }
}
