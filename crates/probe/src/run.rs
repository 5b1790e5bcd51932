//! One probe study from labelled documents to the "saelab-probe" document: balance, split by
//! document, collect the representations, then the probes (one label) or the XOR
//! experiment (two binary labels).

use saelab_model::{HookPoint, LoadedModel};
use serde::Serialize;

use crate::collect::{collect, CollectOptions, Collected, DictionaryAt, Positions};
use crate::experiment::{majority, probe_representation, ProbeOptions, ProbeRow, Score, Split};
use crate::labels::LabelledDocuments;
use crate::split::validation_documents;
use crate::xor::{xor_experiment, XorRow};
use crate::{ProbeError, Result};

pub const FORMAT: &str = "saelab-probe";

pub struct StudyOptions {
    pub collect: CollectOptions,
    pub probe: ProbeOptions,
    /// Validation share of each class's (or XOR cell's) documents.
    pub validation: f64,
}

#[derive(Serialize)]
pub struct LabelSummary {
    pub spec: String,
    pub classes: Vec<String>,
    /// Documents per class after balancing.
    pub documents: Vec<usize>,
}

#[derive(Serialize)]
pub struct Study {
    pub format: &'static str,
    pub version: u32,
    pub model: String,
    pub corpus: String,
    pub positions: Positions,
    pub positions_text: String,
    pub ctx: usize,
    pub documents: usize,
    /// Rows probed (documents, or tokens for `tokens`), and how many are validation.
    pub rows: usize,
    pub validation_rows: usize,
    pub tokens_run: usize,
    pub seed: u64,
    /// The L2 strength as scikit-learn's C, on standardised columns.
    pub c: f64,
    pub labels: Vec<LabelSummary>,
    /// Per-label probes (one label).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub probes: Vec<ProbeRow>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub majority: Option<Score>,
    /// The XOR experiment (two labels).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub xor: Vec<XorRow>,
    /// XOR cells `[a][b]`: documents in each after balancing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub xor_cells: Option<[[usize; 2]; 2]>,
}

/// What the study is doing, for a progress display.
pub enum Stage<'a> {
    Collecting { done: usize, total: usize },
    Probing(&'a str),
}

/// Runs the study on documents already labelled and balanced: probes of label 0 with one
/// label, the XOR experiment with two binary labels.
#[allow(clippy::too_many_arguments)]
pub fn study(
    loaded: &LoadedModel,
    corpus: &str,
    docs: &LabelledDocuments,
    hooks: &[HookPoint],
    dictionaries: &[DictionaryAt<'_>],
    options: &StudyOptions,
    progress: &mut dyn FnMut(Stage<'_>),
) -> Result<Study> {
    let xor = match docs.specs.len() {
        1 => false,
        2 if docs.classes.iter().all(|c| c.len() == 2) => true,
        _ => {
            return Err(ProbeError::invalid(
                "label",
                "the XOR experiment takes two binary labels (FIELD=VALUE or contains:WORD)",
            ))
        }
    };
    if !(options.validation > 0.0 && options.validation < 1.0) {
        return Err(ProbeError::invalid(
            "validation",
            format!(
                "{}: must be a share strictly between 0 and 1",
                options.validation
            ),
        ));
    }
    // Split by the combination of labels, so each XOR cell keeps its share on both sides.
    let cell: Vec<u32> = (0..docs.len())
        .map(|i| docs.labels.iter().fold(0, |acc, l| acc * 2 + l[i]))
        .collect();
    let groups = if xor { 4 } else { docs.classes[0].len() };
    let held = validation_documents(&cell, groups, options.validation, options.probe.seed);
    let total = docs.len();
    let collected: Collected = collect(
        loaded,
        &docs.texts,
        hooks,
        dictionaries,
        &options.collect,
        &mut |done| progress(Stage::Collecting { done, total }),
    )?;
    let split = Split::of_rows(&collected.row_document, &held);
    let row_labels = |s: usize| -> Vec<u32> {
        collected
            .row_document
            .iter()
            .map(|&d| docs.labels[s][d])
            .collect()
    };
    let mut study = Study {
        format: FORMAT,
        version: 1,
        model: loaded.name.clone(),
        corpus: corpus.to_string(),
        positions: options.collect.positions,
        positions_text: options.collect.positions.to_string(),
        ctx: options.collect.ctx,
        documents: docs.len(),
        rows: collected.row_document.len(),
        validation_rows: split.validation.len(),
        tokens_run: collected.tokens,
        seed: options.probe.seed,
        c: options.probe.logistic.c,
        labels: (0..docs.specs.len())
            .map(|s| LabelSummary {
                spec: docs.specs[s].to_string(),
                classes: docs.classes[s].clone(),
                documents: docs.class_counts(s),
            })
            .collect(),
        probes: Vec::new(),
        majority: None,
        xor: Vec::new(),
        xor_cells: None,
    };
    if xor {
        let (a, b) = (row_labels(0), row_labels(1));
        let mut cells = [[0usize; 2]; 2];
        for i in 0..docs.len() {
            cells[docs.labels[0][i] as usize][docs.labels[1][i] as usize] += 1;
        }
        study.xor_cells = Some(cells);
        for rep in &collected.representations {
            progress(Stage::Probing(&format!(
                "{}: a, b, a XOR b and the control",
                rep.name
            )));
            let row = xor_experiment(
                rep,
                &a,
                &b,
                &split,
                &options.probe.logistic,
                options.probe.seed,
            )?;
            study.xor.push(row);
        }
    } else {
        let labels = row_labels(0);
        let classes = docs.classes[0].len();
        study.majority = Some(majority(&labels, classes, &split));
        for rep in &collected.representations {
            let rows =
                probe_representation(rep, &labels, classes, &split, &options.probe, &mut |what| {
                    progress(Stage::Probing(what))
                })?;
            study.probes.extend(rows);
        }
    }
    Ok(study)
}
