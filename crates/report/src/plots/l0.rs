//! L0 distribution: how many latents fire per token, per dictionary.

use super::histogram::{self, HistogramPlot};
use super::Figure;
use crate::eval_file::DictionaryEval;
use crate::format;
use crate::svg::TickFormat;

fn bins(d: &DictionaryEval) -> Vec<(f64, f64, f64)> {
    d.sparsity
        .l0_histogram
        .as_ref()
        .map(|h| h.drawable())
        .unwrap_or_default()
}

/// The dictionary's own L0 range (a TopK dictionary's single bar would be a hairline on an
/// axis shared with a ReLU one), with a margin so that a single bar does not fill the plot.
fn domain(bins: &[(f64, f64, f64)]) -> (f64, f64) {
    let lo = bins.iter().map(|b| b.0).fold(f64::INFINITY, f64::min) - 0.5;
    let hi = bins.iter().map(|b| b.1).fold(f64::NEG_INFINITY, f64::max) - 0.5;
    if !(lo.is_finite() && hi.is_finite()) {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.05).max(4.0);
    ((lo - pad).max(-0.5), hi + pad)
}

pub fn figure(d: &DictionaryEval, colour: &str) -> Figure {
    let bins = bins(d);
    let mean = d.sparsity.l0.finite();
    let guides = mean
        .map(|m| vec![(m, format!("mean {}", format::short(m)))])
        .unwrap_or_default();
    let svg = histogram::draw(&HistogramPlot {
        kind: "l0-histogram",
        dictionary: Some(d.label()),
        bins: &bins,
        apart: None,
        apart_label: "",
        x_domain: domain(&bins),
        x_title: "latents firing on a token (L0)",
        x_format: TickFormat::Plain,
        unit: "tokens",
        colour,
        guides,
        discrete: true,
    });
    let positions: f64 = bins.iter().map(|b| b.2).sum();
    let width = d
        .sparsity
        .l0_histogram
        .as_ref()
        .and_then(|h| h.bin_width.finite());
    let mut caption = format!(
        "Per-token L0 over {} positions; mean {}",
        format::count(positions as u64),
        d.sparsity.l0.show()
    );
    if let Some(w) = width {
        caption.push_str(&format!("; bins of {}", format::number(w)));
    }
    caption.push('.');
    Figure {
        title: format!("L0 per token: {}", d.label()),
        svg,
        caption,
    }
}
