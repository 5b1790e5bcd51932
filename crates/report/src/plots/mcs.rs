//! Max cosine similarity between two dictionaries' decoder directions, one plot per pair.

use super::histogram::{self, bins_extent, HistogramPlot};
use super::Figure;
use crate::eval_file::McsPair;
use crate::format;
use crate::svg::TickFormat;

pub fn figure(pair: &McsPair, colour: &str) -> Figure {
    let (a, b) = (pair.a.or("?"), pair.b.or("?"));
    let bins = pair
        .histogram
        .as_ref()
        .map(|h| h.drawable())
        .unwrap_or_default();
    // Cosines lie in [-1, 1]; most of the mass is in [0, 1].
    let domain = bins_extent(bins.iter().map(|b| (b.0, b.1)), 0.5, (0.0, 1.0));
    let domain = (domain.0.min(0.0), domain.1.max(1.0));
    let mut guides = Vec::new();
    if let Some(m) = pair.mean.finite() {
        guides.push((m, format!("mean {}", format::short(m))));
    }
    if let Some(m) = pair.median.finite() {
        guides.push((m, format!("median {}", format::short(m))));
    }
    // Two labels at almost the same x would print over each other: keep one.
    if guides.len() == 2 && (guides[0].0 - guides[1].0).abs() < 0.06 {
        guides[0].1 = format!("mean {} · median {}", pair.mean.show(), pair.median.show());
        guides.truncate(1);
    }
    let pair_name = format!("{a} → {b}");
    let svg = histogram::draw(&HistogramPlot {
        kind: "mcs-histogram",
        dictionary: Some(&pair_name),
        bins: &bins,
        apart: None,
        apart_label: "",
        x_domain: domain,
        x_title: &format!("max cosine of a {a} decoder direction with {b}"),
        x_format: TickFormat::Plain,
        unit: "latents",
        colour,
        guides,
        discrete: false,
    });
    Figure {
        title: format!("Max cosine similarity: {pair_name}"),
        svg,
        caption: format!(
            "For each decoder direction of {a}, its largest cosine with any decoder direction \
             of {b}; mean {}, median {}. Near 1: the feature exists in both.",
            pair.mean.show(),
            pair.median.show()
        ),
    }
}
