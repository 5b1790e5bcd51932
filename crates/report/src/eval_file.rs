//! The eval JSON ("saelab-eval", version 1) as typed structs. Every field is optional: a
//! missing or null value reads as absent, unknown keys are kept (`extra`) or ignored.

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
}

impl DictionaryEval {
    pub fn label(&self) -> &str {
        self.name.or("(unnamed)")
    }
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
    pub de_projection_mean: Num,
    pub de_projection_median: Num,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// One value per latent.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Latents {
    #[serde(deserialize_with = "nullable")]
    pub density: Vec<Num>,
    #[serde(deserialize_with = "nullable")]
    pub de_projection: Vec<Num>,
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
    }
}
