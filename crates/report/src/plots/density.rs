//! Feature density: a histogram of log10(density) per dictionary, dead latents apart.

use super::histogram::{self, bins_extent, HistogramPlot};
use super::Figure;
use crate::eval_file::DictionaryEval;
use crate::format;
use crate::svg::TickFormat;

/// The bin width METRICS.md fixes, used when bins are rebuilt from per-latent densities.
const BIN_WIDTH: f64 = 0.25;

/// The histogram's bins and dead count, from the file's histogram, or else rebuilt from the
/// per-latent densities.
pub struct DensityBins {
    pub bins: Vec<(f64, f64, f64)>,
    pub dead: Option<f64>,
    pub rebuilt: bool,
}

pub fn density_bins(d: &DictionaryEval) -> DensityBins {
    let given = d.sparsity.density_histogram.as_ref();
    let bins = given.map(|h| h.drawable()).unwrap_or_default();
    let dead = given
        .and_then(|h| h.dead.finite())
        .or(d.sparsity.dead.finite());
    if !bins.is_empty() || d.latents.density.is_empty() {
        return DensityBins {
            bins,
            dead,
            rebuilt: false,
        };
    }
    rebuild(d)
}

fn rebuild(d: &DictionaryEval) -> DensityBins {
    let mut counts = std::collections::BTreeMap::<i64, f64>::new();
    let mut dead = 0.0;
    for density in d.latents.density.iter().filter_map(|v| v.finite()) {
        if density <= 0.0 {
            dead += 1.0;
        } else {
            *counts
                .entry((density.log10() / BIN_WIDTH).floor() as i64)
                .or_default() += 1.0;
        }
    }
    DensityBins {
        bins: counts
            .into_iter()
            .map(|(b, n)| (b as f64 * BIN_WIDTH, (b + 1) as f64 * BIN_WIDTH, n))
            .collect(),
        dead: Some(dead),
        rebuilt: true,
    }
}

/// One x range (log10 density) for every dictionary's plots, so that they line up.
pub fn shared_domain(dicts: &[DictionaryEval]) -> (f64, f64) {
    let edges = dicts
        .iter()
        .flat_map(|d| density_bins(d).bins)
        .map(|(lo, hi, _)| (lo, hi.min(0.0)));
    bins_extent(edges, 1.0, (-6.0, 0.0))
}

pub fn figure(d: &DictionaryEval, colour: &str, domain: (f64, f64)) -> Figure {
    let DensityBins {
        bins,
        dead,
        rebuilt,
    } = density_bins(d);
    let window = d.sparsity.dead_window_tokens.finite().filter(|t| *t >= 1.0);
    let guides = window
        .map(|t| vec![(-t.log10(), "1 / window".to_string())])
        .unwrap_or_default();
    let svg = histogram::draw(&HistogramPlot {
        kind: "density-histogram",
        dictionary: Some(d.label()),
        bins: &bins,
        apart: dead,
        apart_label: "dead",
        x_domain: domain,
        x_title: "fraction of tokens on which the latent fires (log scale)",
        x_format: TickFormat::Exponent,
        unit: "latents",
        colour,
        guides,
        discrete: false,
    });
    let latents = d
        .d_sae
        .finite()
        .or_else(|| (!d.latents.density.is_empty()).then_some(d.latents.density.len() as f64));
    let mut caption = String::new();
    if let Some(n) = latents {
        caption.push_str(&format!("{} latents. ", format::count(n as u64)));
    }
    match (dead, latents) {
        (Some(k), Some(n)) if n > 0.0 => caption.push_str(&format!(
            "{} dead ({}), the grey bar at the left",
            format::count(k as u64),
            format::percent(k / n)
        )),
        (Some(k), _) => caption.push_str(&format!(
            "{} dead, the grey bar at the left",
            format::count(k as u64)
        )),
        (None, _) => caption.push_str("Dead count n/a"),
    }
    match window {
        Some(t) => caption.push_str(&format!(
            ", judged over {} tokens; densities below 1/{} (dashed line) cannot be seen in that \
                window. ",
            format::count(t as u64),
            format::count(t as u64)
        )),
        None => caption.push_str(". "),
    }
    caption.push_str("Bins of 0.25 in log10 density");
    if rebuilt {
        caption.push_str(", rebuilt from the per-latent densities (the file has no histogram)");
    }
    caption.push('.');
    Figure {
        title: format!("Feature density: {}", d.label()),
        svg,
        caption,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_are_rebuilt_from_latent_densities_when_missing() {
        let d: DictionaryEval = serde_json::from_value(serde_json::json!({
            "name": "x",
            "latents": {"density": [0.0, 0.001, 0.0015, 0.5, null]}
        }))
        .unwrap();
        let b = density_bins(&d);
        assert!(b.rebuilt);
        assert_eq!(b.dead, Some(1.0));
        assert_eq!(b.bins, vec![(-3.0, -2.75, 2.0), (-0.5, -0.25, 1.0)]);
        let f = figure(&d, "#000", shared_domain(std::slice::from_ref(&d)));
        assert!(f.caption.contains("rebuilt"));
    }
}
