//! Training curves of a run: FVU, L0, dead fraction, learning rate, (for the penalised
//! trainers) the sparsity coefficient and (for contextual runs) the context share against
//! tokens, one line per dictionary.

use super::lines::{self, LinePlot, Series};
use super::Figure;
use crate::lenient::Num;
use crate::run_files::{MetricsLine, RunMetrics};
use crate::svg::{series_colour, TickFormat};

struct Curve {
    kind: &'static str,
    title: &'static str,
    y_title: &'static str,
    y_format: TickFormat,
    y_from_zero: bool,
    pick: fn(&MetricsLine) -> Num,
    caption: &'static str,
}

const CURVES: [Curve; 6] = [
    Curve {
        kind: "training-fvu",
        title: "FVU during training",
        y_title: "FVU",
        y_format: TickFormat::Plain,
        y_from_zero: false,
        pick: |l| l.fvu,
        caption: "Fraction of variance unexplained on each logged training batch (Σ‖x − x̂‖² / Σ‖x \
            − mean‖²).",
    },
    Curve {
        kind: "training-l0",
        title: "L0 during training",
        y_title: "L0",
        y_format: TickFormat::Plain,
        y_from_zero: false,
        pick: |l| l.l0,
        caption: "Mean number of latents firing per token on each logged training batch.",
    },
    Curve {
        kind: "training-dead-fraction",
        title: "Dead latents during training",
        y_title: "dead latents",
        y_format: TickFormat::Percent,
        y_from_zero: true,
        pick: |l| l.dead_fraction,
        caption: "Share of latents that have not fired within the trainer's dead window.",
    },
    Curve {
        kind: "training-lr",
        title: "Learning rate",
        y_title: "learning rate",
        y_format: TickFormat::Plain,
        y_from_zero: true,
        pick: |l| l.lr,
        caption: "The schedule each trainer followed.",
    },
    Curve {
        kind: "training-sparsity-coefficient",
        title: "Sparsity coefficient",
        y_title: "coefficient",
        y_format: TickFormat::Exponent,
        y_from_zero: false,
        // Log scale: a coefficient steered towards a target L0 can move by orders of
        // magnitude. TopK's 0 has no logarithm and is left out.
        pick: |l| {
            Num(l
                .sparsity_coefficient
                .finite()
                .filter(|c| *c > 0.0)
                .map(f64::log10))
        },
        caption: "The L1 (or JumpReLU's L0) coefficient of the penalised trainers at each logged \
            step: its warm-up, or its path when steered towards a target_l0.",
    },
    Curve {
        kind: "training-context-share",
        title: "Context share during training",
        y_title: "context share",
        y_format: TickFormat::Percent,
        y_from_zero: true,
        pick: |l| l.context_share,
        caption: "Share of the reconstruction's energy carried by codes that came from earlier \
            positions (a contextual dictionary's context path; 0 for per-position ones) on each \
            logged training batch.",
    },
];

/// Plots drawn only when some dictionary of the run has their numbers (contextual runs log
/// no dead fraction).
const ONLY_WHEN_PRESENT: [&str; 3] = [
    "training-dead-fraction",
    "training-sparsity-coefficient",
    "training-context-share",
];

pub fn figures(metrics: &RunMetrics) -> Vec<Figure> {
    CURVES
        .iter()
        .filter_map(|c| {
            let series: Vec<Series> = metrics
                .curves
                .iter()
                .enumerate()
                .map(|(i, curve)| Series {
                    name: curve.name.clone(),
                    colour: series_colour(i).to_string(),
                    points: curve
                        .lines
                        .iter()
                        .filter_map(|l| Some((l.tokens.finite()?, (c.pick)(l).finite()?)))
                        .collect(),
                })
                .collect();
            // TopK and BatchTopK have no coefficient, `saelab train` runs no context share,
            // contextual runs no dead fraction: a run without them has no such plot.
            let none = series.iter().all(|s| s.points.is_empty());
            if none && ONLY_WHEN_PRESENT.contains(&c.kind) {
                return None;
            }
            Some(Figure {
                title: c.title.to_string(),
                svg: lines::draw(&LinePlot {
                    kind: c.kind,
                    series: &series,
                    x_title: "training tokens",
                    y_title: c.y_title,
                    y_format: c.y_format,
                    y_from_zero: c.y_from_zero,
                }),
                caption: c.caption.to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(lines: &str) -> RunMetrics {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.jsonl");
        std::fs::write(&path, lines).unwrap();
        RunMetrics::read(&path).unwrap()
    }

    #[test]
    fn the_coefficient_is_plotted_only_for_penalised_trainers() {
        let topk = "{\"name\":\"t\",\"step\":9,\"tokens\":40960,\"fvu\":0.5,\"l0\":32,\
                    \"lr\":0.001,\"sparsity_coefficient\":0.0,\"dead_fraction\":0.0}\n";
        let titles = |m: &RunMetrics| figures(m).into_iter().map(|f| f.title).collect::<Vec<_>>();
        assert!(!titles(&metrics(topk)).contains(&"Sparsity coefficient".to_string()));
        let relu = format!(
            "{topk}{{\"name\":\"r\",\"step\":9,\"tokens\":40960,\"fvu\":0.5,\"l0\":64,\
             \"lr\":0.001,\"sparsity_coefficient\":2.5}}\n"
        );
        let figs = figures(&metrics(&relu));
        let coefficient = figs
            .iter()
            .find(|f| f.title == "Sparsity coefficient")
            .expect("plotted");
        assert!(coefficient.svg.contains("<svg"), "{}", coefficient.svg);
        assert_eq!(figs.len(), 5);
        assert!(!titles(&metrics(&relu)).contains(&"Context share during training".to_string()));
    }

    #[test]
    fn the_context_share_is_plotted_for_contextual_runs() {
        let run = "{\"name\":\"topk\",\"step\":9,\"tokens\":4064,\"fvu\":0.5,\"l0\":32,\
                   \"context_share\":0.0}\n\
                   {\"name\":\"carry\",\"step\":9,\"tokens\":4064,\"fvu\":0.4,\"l0\":32,\
                   \"context_share\":0.25}\n";
        let figs = figures(&metrics(run));
        let share = figs
            .iter()
            .find(|f| f.title == "Context share during training")
            .expect("plotted");
        assert!(share.svg.contains("carry") && share.svg.contains("topk"));
        assert!(
            figs.iter()
                .all(|f| f.title != "Dead latents during training"),
            "no dead fraction is logged, so no plot of it"
        );
    }
}
