//! Line charts of several series against one x (training curves against tokens).

use crate::svg::legend::legend_chart;
use crate::svg::scale::{nice_extent, Scale};
use crate::svg::TickFormat;

pub const WIDTH: f64 = 416.0;
pub const HEIGHT: f64 = 260.0;
/// Points per line beyond which a line is thinned (evenly, keeping its last point).
const MAX_POINTS: usize = 1500;
/// Lines this short also get a dot per point, so that one logged step still shows.
const DOTS_UP_TO: usize = 40;

pub struct Series {
    pub name: String,
    pub colour: String,
    pub points: Vec<(f64, f64)>,
}

pub struct LinePlot<'a> {
    pub kind: &'a str,
    pub series: &'a [Series],
    pub x_title: &'a str,
    pub y_title: &'a str,
    pub y_format: TickFormat,
    /// Start the y axis at zero (fractions, rates) rather than at the data.
    pub y_from_zero: bool,
}

fn thin(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let stride = super::stride_for(points.len(), MAX_POINTS);
    let mut out: Vec<_> = points.iter().copied().step_by(stride).collect();
    if let Some(&last) = points.last() {
        if out.last() != Some(&last) {
            out.push(last);
        }
    }
    out
}

pub fn draw(p: &LinePlot) -> String {
    let entries: Vec<(String, String)> = p
        .series
        .iter()
        .map(|s| (s.colour.clone(), s.name.clone()))
        .collect();
    let mut chart = legend_chart(p.kind, WIDTH, HEIGHT, 18.0, &entries);
    let finite: Vec<(f64, f64)> = p
        .series
        .iter()
        .flat_map(|s| s.points.iter().copied())
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    let x_lo = finite.iter().map(|q| q.0).fold(f64::INFINITY, f64::min);
    let x_hi = finite.iter().map(|q| q.0).fold(f64::NEG_INFINITY, f64::max);
    let y_lo = finite.iter().map(|q| q.1).fold(f64::INFINITY, f64::min);
    let y_hi = finite.iter().map(|q| q.1).fold(f64::NEG_INFINITY, f64::max);
    let x = if finite.is_empty() {
        chart.x_linear(0.0, 1.0)
    } else {
        chart.x_linear(x_lo.min(0.0), x_hi)
    };
    // Losses and L0 often fall by orders of magnitude: a log axis shows the whole run.
    let log = !p.y_from_zero && y_lo > 0.0 && y_hi / y_lo >= 20.0;
    let y = if finite.is_empty() {
        chart.y_linear(0.0, 1.0)
    } else if log {
        Scale::log10(y_lo / 1.15, y_hi * 1.15, chart.bottom(), chart.top())
    } else {
        let lo = if p.y_from_zero { y_lo.min(0.0) } else { y_lo };
        // A flat series (no dead latents all run) gets a readable range above it, not
        // ticks a trillionth apart.
        let hi = if y_hi > lo {
            y_hi
        } else {
            lo + lo.abs().max(1.0)
        };
        let (lo, hi) = nice_extent(lo, hi, 5);
        chart.y_linear(lo, hi)
    };
    let y_title = if log {
        format!("{} (log scale)", p.y_title)
    } else {
        p.y_title.to_string()
    };
    chart.y_axis(&y, &y_title, p.y_format, 5);
    chart.x_axis(&x, p.x_title, TickFormat::Si, 5);
    if finite.is_empty() {
        chart.note("nothing logged yet");
    }
    for s in p.series {
        let pts = thin(&s.points);
        let pixels: Vec<(f64, f64)> = pts
            .iter()
            .filter(|(a, b)| a.is_finite() && b.is_finite())
            .map(|&(a, b)| (x.map(a), y.map_clamped(b)))
            .collect();
        chart.line(&pixels, &s.colour, Some(&s.name));
        if pixels.len() <= DOTS_UP_TO {
            for &(cx, cy) in &pixels {
                chart.circle(cx, cy, 2.5, &s.colour, Some(&s.name));
            }
        }
    }
    chart.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_thinned_but_keep_their_end() {
        let pts: Vec<(f64, f64)> = (0..10_001).map(|i| (i as f64, 1.0)).collect();
        let t = thin(&pts);
        assert!(t.len() <= MAX_POINTS + 1);
        assert_eq!(t.last(), Some(&(10_000.0, 1.0)));
    }

    #[test]
    fn one_point_lines_get_a_dot_and_empty_charts_a_note() {
        let series = [Series {
            name: "a".into(),
            colour: "#000".into(),
            points: vec![(100.0, 0.5)],
        }];
        let plot = |series: &[Series]| {
            draw(&LinePlot {
                kind: "training-fvu",
                series,
                x_title: "tokens",
                y_title: "fvu",
                y_format: TickFormat::Plain,
                y_from_zero: false,
            })
        };
        assert!(plot(&series).contains("<circle"));
        assert!(plot(&[]).contains("nothing logged yet"));
    }

    #[test]
    fn a_flat_zero_series_gets_a_readable_axis() {
        let series = [Series {
            name: "a".into(),
            colour: "#000".into(),
            points: vec![(0.0, 0.0), (100.0, 0.0)],
        }];
        let svg = draw(&LinePlot {
            kind: "training-dead-fraction",
            series: &series,
            x_title: "tokens",
            y_title: "dead latents",
            y_format: TickFormat::Plain,
            y_from_zero: true,
        });
        assert!(
            !svg.contains("e-1"),
            "tick labels a trillionth apart: {svg}"
        );
        assert!(svg.contains(">1<") || svg.contains(">1.0<"), "{svg}");
    }
}
