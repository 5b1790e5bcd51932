//! A training run folder's files: `metrics.jsonl` (one line per dictionary per logged step),
//! `summary.json` (written when the run finishes) and `config.json`.

use crate::error::{ReportError, Result};
use crate::lenient::{nullable, Num, Text};
use serde::Deserialize;
use std::path::Path;

/// One line of `metrics.jsonl`: the trainer's step statistics plus name, tokens, tokens/s.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct MetricsLine {
    pub name: Text,
    pub step: Num,
    pub tokens: Num,
    pub tokens_per_s: Num,
    pub lr: Num,
    /// L1 or L0 coefficient (`l1_coefficient` in files written before JumpReLU existed).
    #[serde(alias = "l1_coefficient")]
    pub sparsity_coefficient: Num,
    pub loss: Num,
    pub recon_loss: Num,
    pub aux_loss: Num,
    pub l1_loss: Num,
    pub l0_loss: Num,
    pub mse: Num,
    pub fvu: Num,
    pub l0: Num,
    pub dead_fraction: Num,
    /// A contextual dictionary's share of the reconstruction carried by its context path.
    pub context_share: Num,
    pub threshold: Num,
    pub resampled: Num,
}

/// The lines of one dictionary, in token order.
pub struct DictionaryCurve {
    pub name: String,
    pub lines: Vec<MetricsLine>,
}

pub struct RunMetrics {
    pub curves: Vec<DictionaryCurve>,
    /// Lines that were not JSON objects (a run killed mid-write leaves a partial last line).
    pub unreadable_lines: usize,
}

impl RunMetrics {
    /// Reads `metrics.jsonl`. A resumed run logs again the steps after its last checkpoint:
    /// for a repeated token count the later line wins.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| ReportError::Read {
            path: path.to_path_buf(),
            cause: source,
        })?;
        Ok(Self::parse(&text))
    }

    pub fn parse(text: &str) -> Self {
        let mut curves: Vec<DictionaryCurve> = Vec::new();
        let mut unreadable_lines = 0;
        for raw in text.lines().filter(|l| !l.trim().is_empty()) {
            let line = match serde_json::from_str::<serde_json::Value>(raw) {
                Ok(v) if v.is_object() => MetricsLine::deserialize(&v).unwrap_or_default(),
                _ => {
                    unreadable_lines += 1;
                    continue;
                }
            };
            let name = line.name.or("(unnamed)").to_string();
            match curves.iter_mut().find(|c| c.name == name) {
                Some(c) => c.lines.push(line),
                None => curves.push(DictionaryCurve {
                    name,
                    lines: vec![line],
                }),
            }
        }
        for c in &mut curves {
            c.lines.retain(|l| l.tokens.finite().is_some());
            // Stable sort, then keep the last of each run of equal token counts.
            c.lines.sort_by(|a, b| {
                a.tokens
                    .0
                    .unwrap_or(0.0)
                    .total_cmp(&b.tokens.0.unwrap_or(0.0))
            });
            let mut kept: Vec<MetricsLine> = Vec::with_capacity(c.lines.len());
            for l in c.lines.drain(..) {
                match kept.last_mut() {
                    Some(prev) if prev.tokens == l.tokens => *prev = l,
                    _ => kept.push(l),
                }
            }
            c.lines = kept;
        }
        RunMetrics {
            curves,
            unreadable_lines,
        }
    }
}

/// `summary.json`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Summary {
    pub steps: Num,
    /// Steps the run planned; more than `steps` when the data ended early.
    pub planned_steps: Num,
    pub stopped_early: bool,
    pub tokens: Num,
    pub seconds: Num,
    pub holdout: Option<Holdout>,
    /// `saelab train-contextual`'s per-dictionary lines (with their held-out numbers).
    #[serde(deserialize_with = "nullable")]
    pub dictionaries: Vec<WindowDictionaryLine>,
}

/// One dictionary of a `saelab train-contextual` run.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct WindowDictionaryLine {
    pub name: Text,
    pub kind: Text,
    pub parameters: Num,
    pub train_flops_per_token: Num,
    pub tokens_per_s: Num,
    pub holdout: Option<WindowHoldout>,
}

/// A dictionary run over the held-out windows whole.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct WindowHoldout {
    pub fvu: Num,
    pub l0: Num,
    pub codes_per_position: Num,
    pub context_share: Num,
    pub dead_fraction: Num,
    pub median_p_stay: Num,
    pub median_run: Num,
    pub positions: Num,
}

/// Numbers on held-out windows of the training data, computed when the run ends.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Holdout {
    pub windows: Num,
    pub tokens: Num,
    pub positions: Text,
    pub dead_window_tokens: Num,
    #[serde(deserialize_with = "nullable")]
    pub dictionaries: Vec<HoldoutDictionary>,
    pub pca: Option<PcaBaseline>,
    pub ica: Option<PcaBaseline>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct HoldoutDictionary {
    pub name: Text,
    pub fvu: Num,
    pub mse: Num,
    pub l0: Num,
    pub dead: Num,
    pub dead_fraction: Num,
}

/// A linear baseline's held-out line (PCA or ICA).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PcaBaseline {
    pub components: Num,
    pub fitted_on_tokens: Text,
    pub fvu: Num,
}

/// Reads and parses a JSON file, naming it in any error.
pub fn read_json(path: &Path) -> Result<serde_json::Value> {
    let text = std::fs::read_to_string(path).map_err(|source| ReportError::Read {
        path: path.to_path_buf(),
        cause: source,
    })?;
    serde_json::from_str(&text).map_err(|source| ReportError::Json {
        path: path.to_path_buf(),
        cause: source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resumed_runs_keep_the_later_line_and_partial_lines_are_counted() {
        let text = r#"{"name":"a","step":1,"tokens":100,"fvu":0.9}
{"name":"b","step":1,"tokens":100,"fvu":0.8}
{"name":"a","step":2,"tokens":200,"fvu":0.7}
{"name":"a","step":2,"tokens":200,"fvu":0.6}
{"name":"a","step":3,"tokens":300,"fvu":null}
{"name":"a","step":4,"tok"#;
        let m = RunMetrics::parse(text);
        assert_eq!(m.unreadable_lines, 1);
        assert_eq!(m.curves.len(), 2);
        let a = &m.curves[0];
        assert_eq!(a.name, "a");
        let fvu: Vec<Num> = a.lines.iter().map(|l| l.fvu).collect();
        assert_eq!(fvu, vec![Num(Some(0.9)), Num(Some(0.6)), Num(None)]);
    }
}
