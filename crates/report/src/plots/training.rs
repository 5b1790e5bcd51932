//! Training curves of a run: FVU, L0, dead fraction and learning rate against tokens, one
//! line per dictionary.

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

const CURVES: [Curve; 4] = [
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
];

pub fn figures(metrics: &RunMetrics) -> Vec<Figure> {
    CURVES
        .iter()
        .map(|c| {
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
            Figure {
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
            }
        })
        .collect()
}
