//! Sparse probing: validation accuracy against k (log axis) for the top-k latents of each
//! representation and k random directions, with every dimension's accuracy and the
//! majority class as flat references.

use crate::svg::legend::legend_chart;
use crate::svg::scale::{nice_extent, Scale};
use crate::svg::TickFormat;

pub const WIDTH: f64 = 560.0;
pub const HEIGHT: f64 = 300.0;

pub struct KSeries {
    pub name: String,
    pub colour: String,
    /// (k, accuracy); one point with k = None draws a flat line across the plot.
    pub points: Vec<(f64, f64)>,
    pub flat: bool,
}

pub fn draw(series: &[KSeries], ks: &[f64], majority: Option<f64>) -> String {
    let entries: Vec<(String, String)> = series
        .iter()
        .map(|s| (s.colour.clone(), s.name.clone()))
        .collect();
    let mut chart = legend_chart("probe-accuracy-k", WIDTH, HEIGHT, 18.0, &entries)
        .describe("validation accuracy against the number of latents probed");
    let k_lo = ks.iter().copied().fold(f64::INFINITY, f64::min);
    let k_hi = ks.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (k_lo, k_hi) = if k_lo.is_finite() && k_hi > k_lo {
        (k_lo, k_hi)
    } else {
        (1.0, 10.0)
    };
    let x = Scale::log10(k_lo / 1.2, k_hi * 1.2, chart.left(), chart.right());
    let values = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .chain(majority)
        .filter(|v| v.is_finite());
    let lo = values.fold(1.0f64, f64::min);
    let (lo, hi) = nice_extent(lo.min(0.9), 1.0, 5);
    let y = chart.y_linear(lo, hi);
    chart.y_axis(&y, "validation accuracy", TickFormat::Percent, 5);
    for &k in ks {
        chart.x_tick(x.map(k), &format!("{k}"));
    }
    chart.x_title("k (latents or directions probed; log scale)");
    if let Some(m) = majority {
        chart.h_guide(y.map_clamped(m), "majority class", "#8c8c8c");
    }
    for s in series {
        let pixels: Vec<(f64, f64)> = if s.flat {
            s.points
                .first()
                .map(|&(_, a)| {
                    vec![
                        (x.map(k_lo), y.map_clamped(a)),
                        (x.map(k_hi), y.map_clamped(a)),
                    ]
                })
                .unwrap_or_default()
        } else {
            s.points
                .iter()
                .map(|&(k, a)| (x.map(k), y.map_clamped(a)))
                .collect()
        };
        chart.line(&pixels, &s.colour, Some(&s.name));
        if !s.flat {
            for &(cx, cy) in &pixels {
                chart.circle(cx, cy, 2.5, &s.colour, Some(&s.name));
            }
        }
    }
    chart.finish()
}
