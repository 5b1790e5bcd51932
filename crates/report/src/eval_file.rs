//! The eval JSON ("saelab-eval", versions 1 and 2) as typed structs. Every field is optional:
//! a missing or null value reads as absent, unknown keys are kept (`extra`) or ignored.
//!
//! Version 1 wrote the raw D/E ratio under `de_projection`; version 2 writes METRICS.md's
//! scaled projection there and the raw ratio under `de_projection_raw`. The accessors on
//! `DictionaryEval` read either.

use crate::lenient::{nullable, Num, Text};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct EvalFile {
    pub format: Text,
    pub version: Num,
    pub model: Text,
    pub corpus: Text,
    #[serde(deserialize_with = "nullable")]
    pub params: Map<String, Value>,
    #[serde(deserialize_with = "nullable")]
    pub hooks: Vec<HookBaseline>,
    #[serde(deserialize_with = "nullable")]
    pub dictionaries: Vec<DictionaryEval>,
    #[serde(deserialize_with = "nullable")]
    pub mcs: Vec<McsPair>,
}

/// The model's own numbers at one hook (no dictionary involved).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct HookBaseline {
    pub hook: Text,
    pub d: Num,
    pub ce_clean: Num,
    pub ce_zero: Num,
    pub ce_mean: Num,
    pub kl_zero: Num,
    pub kl_mean: Num,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DictionaryEval {
    pub name: Text,
    pub path: Text,
    pub hook: Text,
    /// A transcoder's input hook (`hook` is where it is spliced).
    pub input_hook: Text,
    pub architecture: Text,
    pub d_in: Num,
    pub d_sae: Num,
    #[serde(deserialize_with = "nullable")]
    pub reconstruction: Reconstruction,
    #[serde(deserialize_with = "nullable")]
    pub sparsity: Sparsity,
    #[serde(deserialize_with = "nullable")]
    pub downstream: Downstream,
    #[serde(deserialize_with = "nullable")]
    pub geometry: Geometry,
    #[serde(deserialize_with = "nullable")]
    pub latents: Latents,
    /// Present for a dictionary evaluated with latents removed.
    pub pruned: Option<Pruned>,
    /// Present for a contextual dictionary (carry, temporal).
    pub contextual: Option<ContextualEval>,
}

impl DictionaryEval {
    pub fn label(&self) -> &str {
        self.name.or("(unnamed)")
    }

    /// Whether `de_projection*` hold the scaled projection (METRICS.md): a file that knows
    /// the raw ratio apart, or the scale, does. Older files hold the raw ratio under those
    /// names.
    pub fn de_projection_is_scaled(&self) -> bool {
        !self.latents.de_projection_raw.is_empty()
            || self.geometry.input_mean_sq_norm.0.is_some()
            || self.geometry.de_projection_raw_mean.0.is_some()
    }

    /// Per-latent scaled D/E projections (empty for an older file, which has only the raw).
    pub fn de_projection_scaled(&self) -> &[Num] {
        match self.de_projection_is_scaled() {
            true => &self.latents.de_projection,
            false => &[],
        }
    }

    /// Per-latent raw D/E ratios, from either version.
    pub fn de_projection_raw(&self) -> &[Num] {
        match self.de_projection_is_scaled() {
            true => &self.latents.de_projection_raw,
            false => &self.latents.de_projection,
        }
    }

    /// (mean, median) of the scaled D/E projection; absent in an older file.
    pub fn de_projection_summary(&self) -> (Num, Num) {
        let g = &self.geometry;
        match self.de_projection_is_scaled() {
            true => (g.de_projection_mean, g.de_projection_median),
            false => (Num(None), Num(None)),
        }
    }

    /// (mean, median) of the raw D/E ratio, from either version.
    pub fn de_projection_raw_summary(&self) -> (Num, Num) {
        let g = &self.geometry;
        match self.de_projection_is_scaled() {
            true => (g.de_projection_raw_mean, g.de_projection_raw_median),
            false => (g.de_projection_mean, g.de_projection_median),
        }
    }
}

/// A contextual dictionary's context path, and how what is on persists along the window.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ContextualEval {
    pub context_share: Num,
    /// Codes on per position (`sparsity.l0` counts those paid for).
    pub l0_on: Num,
    #[serde(deserialize_with = "nullable")]
    pub persistence: PersistenceEval,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PersistenceEval {
    pub latents: Num,
    pub min_fires: Num,
    pub p_stay_median: Num,
    pub mean_run_median: Num,
    pub p_stay_pooled: Num,
}

/// Which latents were removed before decoding, and how they were chosen.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Pruned {
    pub by: Text,
    pub count: Num,
    pub densities_removed_sum: Num,
    pub density_positions: Num,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Reconstruction {
    pub mse: Num,
    pub sse_per_token: Num,
    pub l2_loss: Num,
    pub fvu: Num,
    pub variance_explained: Num,
    pub cossim: Num,
    pub relative_norm: Num,
    pub shrinkage: Num,
    pub explained_variance_legacy: Num,
    /// Numbers a later version adds; the table shows them too.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Sparsity {
    pub l0: Num,
    pub l1: Num,
    pub dead: Num,
    pub alive_pct: Num,
    pub dead_window_tokens: Num,
    pub density_histogram: Option<Histogram>,
    pub l0_histogram: Option<Histogram>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Downstream {
    pub ce_clean: Num,
    pub ce_spliced: Num,
    pub ce_delta: Num,
    pub ce_zero: Num,
    pub ce_mean: Num,
    pub ce_random: Num,
    pub loss_recovered: Num,
    pub loss_recovered_mean_ablation: Num,
    pub kl: Num,
    pub kl_random: Num,
    pub kl_div_score: Num,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Geometry {
    pub decoder_norm_mean: Num,
    /// Scaled (version 2) or raw (version 1): read through `DictionaryEval`'s accessors.
    pub de_projection_mean: Num,
    pub de_projection_median: Num,
    pub de_projection_raw_mean: Num,
    pub de_projection_raw_median: Num,
    /// E‖x‖² of the dictionary's input: s² = d_in / this.
    pub input_mean_sq_norm: Num,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// One value per latent.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Latents {
    #[serde(deserialize_with = "nullable")]
    pub density: Vec<Num>,
    /// Scaled (version 2) or raw (version 1): read through `DictionaryEval`'s accessors.
    #[serde(deserialize_with = "nullable")]
    pub de_projection: Vec<Num>,
    #[serde(deserialize_with = "nullable")]
    pub de_projection_raw: Vec<Num>,
    #[serde(deserialize_with = "nullable")]
    pub decoder_norm: Vec<Num>,
    /// Null for architectures without an encoder bias (gated).
    pub b_enc: Option<Vec<Num>>,
}

/// `{"bin_width": w, "bins": [{"lo", "hi", "count"}], "dead": n}`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Histogram {
    pub bin_width: Num,
    #[serde(deserialize_with = "nullable")]
    pub bins: Vec<Bin>,
    /// Only in density histograms: latents that never fired, counted apart from the bins.
    pub dead: Num,
}

#[derive(Clone, Copy, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Bin {
    pub lo: Num,
    pub hi: Num,
    pub count: Num,
}

impl Histogram {
    /// The bins a plot can draw: finite edges, lo < hi, a finite non-negative count.
    pub fn drawable(&self) -> Vec<(f64, f64, f64)> {
        self.bins
            .iter()
            .filter_map(|b| {
                let (lo, hi, n) = (b.lo.finite()?, b.hi.finite()?, b.count.finite()?);
                (lo < hi && n >= 0.0).then_some((lo, hi, n))
            })
            .collect()
    }
}

/// Max cosine similarity of each decoder row of `a` with the rows of `b`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct McsPair {
    pub a: Text,
    pub b: Text,
    pub mean: Num,
    pub median: Num,
    pub histogram: Option<Histogram>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nulls_missing_keys_and_extra_keys_are_accepted() {
        let json = serde_json::json!({
            "format": "saelab-eval", "version": 1, "params": null, "hooks": null,
            "something_new": {"x": 1},
            "dictionaries": [{
                "name": "g", "architecture": "gated", "d_sae": 4,
                "reconstruction": {"fvu": null, "mse": 0.1, "new_metric": 0.5},
                "sparsity": null,
                "latents": {"density": [0.1, 0.0, null], "de_projection": [1.0, "NaN"], "b_enc": null},
            }],
            "mcs": [{"a": "g", "b": "h", "histogram": {"bins": [{"lo": 0.1, "hi": 0.0, "count": 1}, {"lo": 0.0, "hi": 0.1, "count": 2}]}}]
        });
        let eval = EvalFile::deserialize(&json).unwrap();
        let d = &eval.dictionaries[0];
        assert_eq!(d.reconstruction.fvu, Num(None));
        assert_eq!(d.reconstruction.mse.finite(), Some(0.1));
        assert!(d.reconstruction.extra.contains_key("new_metric"));
        assert!(d.sparsity.density_histogram.is_none());
        assert_eq!(d.latents.density.len(), 3);
        assert!(d.latents.b_enc.is_none());
        let bins = eval.mcs[0].histogram.as_ref().unwrap().drawable();
        assert_eq!(bins, vec![(0.0, 0.1, 2.0)]);
        assert!(d.pruned.is_none());
    }

    #[test]
    fn both_versions_of_the_de_projection_are_read() {
        let old: DictionaryEval = serde_json::from_value(serde_json::json!({
            "geometry": {"de_projection_mean": 38.0, "de_projection_median": 37.0},
            "latents": {"de_projection": [36.0, 40.0]}
        }))
        .unwrap();
        assert!(!old.de_projection_is_scaled());
        assert_eq!(old.de_projection_raw_summary().1.finite(), Some(37.0));
        assert_eq!(old.de_projection_summary().1, Num(None));
        assert_eq!(old.de_projection_raw().len(), 2);
        assert!(old.de_projection_scaled().is_empty());

        let new: DictionaryEval = serde_json::from_value(serde_json::json!({
            "geometry": {"de_projection_mean": 1.1, "de_projection_median": 1.0,
                         "de_projection_raw_mean": 38.0, "de_projection_raw_median": 37.0,
                         "input_mean_sq_norm": 21000.0},
            "latents": {"de_projection": [0.9, 1.1], "de_projection_raw": [36.0, 40.0]},
            "pruned": {"by": "density", "count": 64, "densities_removed_sum": 3.5, "removed": [1, 2]}
        }))
        .unwrap();
        assert!(new.de_projection_is_scaled());
        assert_eq!(new.de_projection_summary().1.finite(), Some(1.0));
        assert_eq!(new.de_projection_raw_summary().1.finite(), Some(37.0));
        assert_eq!(new.de_projection_scaled()[0].finite(), Some(0.9));
        assert!(new.geometry.extra.is_empty(), "every D/E key is named");
        let pruned = new.pruned.unwrap();
        assert_eq!(pruned.count.finite(), Some(64.0));
        assert_eq!(pruned.densities_removed_sum.finite(), Some(3.5));
    }
}
