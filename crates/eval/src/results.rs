//! What an evaluation writes: the numbers with the parameters that define them
//! (format `saelab-eval`, version 1).

use serde::{Deserialize, Serialize};

use crate::geometry::Mcs;
use crate::reconstruction::ReconstructionMetrics;
use crate::sparsity::SparsityMetrics;

pub const FORMAT: &str = "saelab-eval";
pub const VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalResults {
    pub format: String,
    pub version: u32,
    pub model: String,
    pub corpus: String,
    pub params: EvalParams,
    pub hooks: Vec<HookResults>,
    pub dictionaries: Vec<DictionaryResults>,
    pub mcs: Vec<Mcs>,
}

/// How the numbers were computed; every definition's parameter is here.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalParams {
    pub tokens_requested: Option<u64>,
    pub ctx: usize,
    pub windows: usize,
    pub batch_windows: usize,
    /// Positions where reconstruction and sparsity were measured.
    pub positions_evaluated: u64,
    pub include_special: bool,
    pub reconstruction_positions: String,
    pub splice_positions: String,
    pub ce_positions: String,
    pub ce_positions_counted: u64,
    pub dead_window_tokens: u64,
    pub legacy_mean: String,
    pub random_seed: u64,
}

/// The model alone at one hook: clean, and with the activation ablated.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HookResults {
    pub hook: String,
    pub d: usize,
    pub ce_clean: f64,
    pub ce_zero: f64,
    pub ce_mean: f64,
    pub kl_zero: f64,
    pub kl_mean: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DictionaryResults {
    pub name: String,
    pub path: String,
    /// Where the dictionary's output is compared and spliced.
    pub hook: String,
    /// A transcoder's input hook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_hook: Option<String>,
    pub architecture: String,
    pub d_in: usize,
    pub d_sae: usize,
    pub reconstruction: ReconstructionMetrics,
    pub sparsity: SparsityMetrics,
    pub downstream: Downstream,
    pub geometry: GeometrySummary,
    pub latents: Latents,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Downstream {
    pub ce_clean: f64,
    pub ce_spliced: f64,
    pub ce_delta: f64,
    pub ce_zero: f64,
    pub ce_mean: f64,
    pub ce_random: f64,
    pub loss_recovered: f64,
    pub loss_recovered_mean_ablation: f64,
    pub kl: f64,
    pub kl_random: f64,
    /// Peer variant: (kl_zero − kl) / kl_zero.
    pub kl_div_score: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GeometrySummary {
    pub decoder_norm_mean: f64,
    pub de_projection_mean: f64,
    pub de_projection_median: f64,
}

/// Per-latent values, for plots.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Latents {
    /// Fraction of the dead window's positions where each latent fired.
    pub density: Vec<f64>,
    pub de_projection: Vec<f64>,
    pub decoder_norm: Vec<f64>,
    pub b_enc: Option<Vec<f64>>,
}
