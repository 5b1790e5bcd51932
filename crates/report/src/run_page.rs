//! The training-run report: curves from `metrics.jsonl`, the last logged numbers, held-out
//! numbers from `summary.json`, feature death over training when the folder has density
//! snapshots (`death_section`), the run's config, and the eval sections when the folder has
//! an `eval.json`.

use crate::death_section;
use crate::error::Result;
use crate::eval_page;
use crate::format;
use crate::html::{chip, Page};
use crate::lenient::Num;
use crate::plots::training;
use crate::run_files::{read_json, MetricsLine, RunMetrics, Summary};
use crate::svg::{escape, series_colour};
use crate::table::{Better, Cell, Row, Table};
use serde::Deserialize;
use std::path::Path;

pub const METRICS: &str = "metrics.jsonl";
pub const SUMMARY: &str = "summary.json";
pub const CONFIG: &str = "config.json";
pub const EVAL: &str = "eval.json";

pub fn render(run_dir: &Path) -> Result<String> {
    let metrics = RunMetrics::read(&run_dir.join(METRICS))?;
    let name = run_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| run_dir.display().to_string());
    let title = format!("Training run: {name}");
    let mut page = Page::new(&title);
    page.heading(&title);
    // Optional files: a broken one becomes a notice on the page, not a missing report.
    let summary =
        optional(run_dir, SUMMARY, &mut page).map(|v| Summary::deserialize(&v).unwrap_or_default());
    page.subtitle(&header_line(run_dir, &metrics, summary.as_ref()));
    let chips: Vec<String> = metrics
        .curves
        .iter()
        .enumerate()
        .map(|(i, c)| chip(series_colour(i), &c.name, ""))
        .collect();
    page.markup(&format!("<div class=\"chips\">{}</div>", chips.join("")));
    if metrics.unreadable_lines > 0 {
        page.notice(&format!(
            "{} line(s) of {METRICS} could not be read (a run stopped mid-write leaves a partial \
                last line) and are left out.",
            metrics.unreadable_lines
        ));
    }
    if metrics.curves.is_empty() {
        page.notice(&format!("{METRICS} holds no lines yet."));
    }

    page.section(
        "curves",
        "Training curves",
        Some(
            "Numbers on the training batches at each logged step; a resumed run's repeated steps \
            show their later values.",
        ),
    );
    page.figures(&training::figures(&metrics));

    page.section("last", "Last logged step", None);
    page.markup(&last_step_table(&metrics));

    if let Some(h) = summary.as_ref().and_then(|s| s.holdout.as_ref()) {
        page.section(
            "holdout",
            "Held-out numbers",
            Some(&format!(
                "Measured when training ended on {} tokens ({} windows): {}.",
                h.tokens.show_count(),
                h.windows.show_count(),
                h.positions.or("positions n/a")
            )),
        );
        page.markup(&holdout_table(
            summary.as_ref().and_then(|s| s.holdout.as_ref()),
        ));
        for (name, baseline) in [("PCA", &h.pca), ("ICA", &h.ica)] {
            if let Some(p) = baseline {
                page.subtitle(&format!(
                    "Baseline: {name} with {} components (fitted on {}) has FVU {}.",
                    p.components.show_count(),
                    p.fitted_on_tokens.or("n/a"),
                    p.fvu.show()
                ));
            }
        }
    }

    if let Some(s) = summary.as_ref().filter(|s| !s.dictionaries.is_empty()) {
        page.section(
            "holdout-windows",
            "Held-out windows",
            Some(
                "Each dictionary run over the held-out windows whole, from their second position. \
                 L0 paid: what a position pays for (a contextual dictionary's onsets); codes on: \
                 what is on, carried codes included; context share: the reconstruction's energy \
                 carried from earlier positions; P(stay) and run: medians over latents on at \
                 least 20 times of P(on at t+1 | on at t) and of the mean run length.",
            ),
        );
        page.markup(&window_holdout_table(&s.dictionaries));
    }

    let order: Vec<String> = metrics.curves.iter().map(|c| c.name.clone()).collect();
    death_section::sections(&mut page, run_dir, &order);

    if let Some(eval_json) = optional(run_dir, EVAL, &mut page) {
        match eval_page::parse(&eval_json) {
            Ok(eval) => {
                page.markup("<h2 id=\"eval\" class=\"part\">Evaluation (eval.json)</h2>");
                eval_page::sections(&mut page, &eval);
            }
            Err(e) => page.notice(&format!("{EVAL} could not be shown: {e}")),
        }
    }

    if let Some(config) = optional(run_dir, CONFIG, &mut page) {
        page.section("config", "Run configuration", None);
        let text = serde_json::to_string_pretty(&config).unwrap_or_default();
        page.folded(CONFIG, &text);
    }
    Ok(page.finish())
}

/// A JSON file of the run folder if present; a notice when present but unreadable.
fn optional(run_dir: &Path, file: &str, page: &mut Page) -> Option<serde_json::Value> {
    let path = run_dir.join(file);
    if !path.exists() {
        return None;
    }
    match read_json(&path) {
        Ok(v) => Some(v),
        Err(e) => {
            page.notice(&e.to_string());
            None
        }
    }
}

fn header_line(run_dir: &Path, metrics: &RunMetrics, summary: Option<&Summary>) -> String {
    let last: Option<&MetricsLine> = metrics.curves.iter().filter_map(|c| c.lines.last()).next();
    let steps = summary
        .map(|s| s.steps)
        .filter(|n| n.0.is_some())
        .or(last.map(|l| l.step));
    let tokens = summary
        .map(|s| s.tokens)
        .filter(|n| n.0.is_some())
        .or(last.map(|l| l.tokens));
    let mut parts = vec![run_dir.display().to_string()];
    if let Some(n) = steps {
        parts.push(format!("{} steps", n.show_count()));
    }
    if let Some(n) = tokens.and_then(Num::finite) {
        parts.push(format!("{} tokens", format::si(n)));
    }
    if let Some(s) = summary.and_then(|s| s.seconds.finite()) {
        parts.push(format!("{} s", format::short(s)));
    }
    if let Some(r) = last.and_then(|l| l.tokens_per_s.finite()) {
        parts.push(format!("{} tokens/s", format::si(r)));
    }
    if summary.is_none() {
        parts.push("no summary.json (still running, or stopped)".into());
    }
    if let Some(s) = summary.filter(|s| s.stopped_early) {
        parts.push(format!(
            "STOPPED EARLY: the data ended before the {} planned steps",
            s.planned_steps.show_count()
        ));
    }
    parts.join(" · ")
}

type Pick = fn(&MetricsLine) -> Cell;

const LAST_STEP: [(&str, &str, Pick); 15] = [
    ("step", "step", |l| Cell::count(l.step)),
    ("tokens", "tokens", |l| Cell::count(l.tokens)),
    ("fvu", "FVU", |l| Cell::num(l.fvu)),
    ("mse", "MSE per element", |l| Cell::num(l.mse)),
    ("l0", "L0", |l| Cell::num(l.l0)),
    ("dead_fraction", "dead latents", |l| {
        Cell::Number(l.dead_fraction, show_percent)
    }),
    ("loss", "loss", |l| Cell::num(l.loss)),
    ("recon_loss", "reconstruction loss", |l| {
        Cell::num(l.recon_loss)
    }),
    ("aux_loss", "auxiliary loss", |l| Cell::num(l.aux_loss)),
    ("l1_loss", "L1 loss", |l| Cell::num(l.l1_loss)),
    ("l0_loss", "L0 loss", |l| Cell::num(l.l0_loss)),
    ("sparsity_coefficient", "sparsity coefficient", |l| {
        Cell::num(l.sparsity_coefficient)
    }),
    ("lr", "learning rate", |l| Cell::num(l.lr)),
    ("threshold", "BatchTopK threshold", |l| {
        Cell::num(l.threshold)
    }),
    ("tokens_per_s", "tokens/s", |l| Cell::num(l.tokens_per_s)),
];

fn show_percent(v: Num) -> String {
    match v.0 {
        Some(f) => format::percent(f),
        None => format::NOT_AVAILABLE.to_string(),
    }
}

fn last_step_table(metrics: &RunMetrics) -> String {
    let mut head = vec!["".to_string()];
    head.extend(
        metrics
            .curves
            .iter()
            .enumerate()
            .map(|(i, c)| chip(series_colour(i), &c.name, "")),
    );
    let mut t = Table::new("numbers", head);
    let empty = MetricsLine::default();
    for (key, label, pick) in LAST_STEP {
        t.row(Row {
            label: label.to_string(),
            key: key.to_string(),
            better: Better::Neither,
            cells: metrics
                .curves
                .iter()
                .map(|c| pick(c.lines.last().unwrap_or(&empty)))
                .collect(),
        });
    }
    t.to_html()
}

fn holdout_table(holdout: Option<&crate::run_files::Holdout>) -> String {
    let Some(h) = holdout else {
        return String::new();
    };
    let head = [
        "dictionary",
        "FVU",
        "MSE per element",
        "L0",
        "dead",
        "dead %",
    ]
    .map(escape)
    .to_vec();
    let mut t = Table::new("numbers", head);
    for d in &h.dictionaries {
        t.row(Row {
            label: d.name.or("(unnamed)").to_string(),
            key: "name".into(),
            better: Better::Neither,
            cells: vec![
                Cell::num(d.fvu),
                Cell::num(d.mse),
                Cell::num(d.l0),
                Cell::count(d.dead),
                Cell::Number(d.dead_fraction, show_percent),
            ],
        });
    }
    t.to_html()
}

fn window_holdout_table(dictionaries: &[crate::run_files::WindowDictionaryLine]) -> String {
    let head = [
        "dictionary",
        "kind",
        "FVU",
        "L0 paid",
        "codes on",
        "context share",
        "P(stay)",
        "run",
        "dead %",
        "parameters",
        "train FLOP/token",
        "tokens/s",
    ]
    .map(escape)
    .to_vec();
    let mut t = Table::new("numbers", head);
    let none = crate::run_files::WindowHoldout::default();
    for d in dictionaries {
        let h = d.holdout.as_ref().unwrap_or(&none);
        t.row(Row {
            label: d.name.or("(unnamed)").to_string(),
            key: "name".into(),
            better: Better::Neither,
            cells: vec![
                Cell::Text(d.kind.or("").to_string()),
                Cell::num(h.fvu),
                Cell::num(h.l0),
                Cell::num(h.codes_per_position),
                Cell::Number(h.context_share, show_percent),
                Cell::num(h.median_p_stay),
                Cell::num(h.median_run),
                Cell::Number(h.dead_fraction, show_percent),
                Cell::count(d.parameters),
                Cell::num(d.train_flops_per_token),
                Cell::num(d.tokens_per_s),
            ],
        });
    }
    t.to_html()
}
