//! What an evaluation writes: the numbers with the parameters that define them
//! (format `saelab-eval`, version 2: version 1 wrote the raw D/E ratio as `de_projection`).

use serde::{Deserialize, Serialize};

use crate::geometry::Mcs;
use crate::persistence::PersistenceSummary;
use crate::reconstruction::ReconstructionMetrics;
use crate::sparsity::SparsityMetrics;

pub const FORMAT: &str = "saelab-eval";
pub const VERSION: u32 = 2;

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
    /// Set when latents were removed before decoding (`--prune-densest`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pruned: Option<Pruned>,
    /// Set for a contextual dictionary (carry, temporal), whose codes look back along the
    /// window. Its `sparsity` counts what each position pays for (onsets, novel codes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contextual: Option<Contextual>,
}

/// What a contextual dictionary's context path did over the evaluation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Contextual {
    /// Σ‖r_ctx‖² / Σ(‖r_ctx‖² + ‖r_new‖²): the share of the decoded reconstruction (biases
    /// left out) carried by the context path (carried codes, predicted codes).
    pub context_share: f64,
    /// Σ‖r_ctx‖² and Σ‖r_new‖², in the input's units squared. Summed over every position of
    /// the evaluated windows: the dictionary runs over whole windows, start tokens and
    /// padding included, as the model does.
    pub context_energy: f64,
    pub new_energy: f64,
    /// Mean number of codes on per measured position (what the decoder reads), beside
    /// `sparsity.l0`, the codes paid for.
    pub l0_on: f64,
    /// How the codes that are on persist along the window (`persistence`), over the
    /// measured positions: a run is cut by any position not measured.
    pub persistence: PersistenceSummary,
}

/// Which latents a pruned evaluation removed, and how they were chosen.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pruned {
    /// `density`: the densest latents, measured in a first pass over the evaluated positions.
    pub by: String,
    pub count: usize,
    /// Σ density of the removed latents over `density_positions`; L0 falls by exactly this.
    pub densities_removed_sum: f64,
    /// The positions their density was measured on: every evaluated position.
    pub density_positions: u64,
    /// The removed latents, densest first (ties: lower index first).
    pub removed: Vec<u32>,
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
    /// Of the scaled D/E projection (METRICS.md, `de_projection`).
    pub de_projection_mean: f64,
    pub de_projection_median: f64,
    /// Of the raw ratio ⟨W_dec[i], W_enc[:, i]⟩ / ‖W_enc[:, i]‖², in units of ‖x‖².
    pub de_projection_raw_mean: f64,
    pub de_projection_raw_median: f64,
    /// E‖x‖² of the dictionary's input (a transcoder's input hook) over the evaluated
    /// positions: the D/E scale is s² = d_in / this.
    pub input_mean_sq_norm: f64,
}

/// Per-latent values, for plots.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Latents {
    /// Fraction of the dead window's positions where each latent fired.
    pub density: Vec<f64>,
    /// s²·raw, s² = d_in / E‖x‖² (METRICS.md).
    pub de_projection: Vec<f64>,
    pub de_projection_raw: Vec<f64>,
    pub decoder_norm: Vec<f64>,
    pub b_enc: Option<Vec<f64>>,
}
