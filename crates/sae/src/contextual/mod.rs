//! Contextual dictionaries: codes that look back along the token axis of a window, so a
//! property of a region of text need not be paid for again at every position (seed 001).
//! Two designs: [`carry`] (saelab's own: per-latent states that hold until an onset changes
//! them) and [`temporal_train`] (the temporal SAE as published and as SAELens stores it).
//! [`window`] runs either, and per-position dictionaries, over whole windows for the
//! evaluation and the features scan. Both train on whole windows, row-major `[windows · len, d_in]`, positions in order.

pub mod carry;
pub mod carry_train;
pub mod state;
pub mod temporal_train;
pub mod window;

use serde::Serialize;

/// What one contextual training step did. Losses are in training units (after the input
/// scale); `l0` counts the codes a position pays for (onsets, novel codes).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ContextStepStats {
    /// 0-based index of the step just taken.
    pub step: u64,
    pub lr: f32,
    pub loss: f64,
    /// Mean squared error per element.
    pub mse: f64,
    /// Σ‖x − x̂‖² / Σ‖x − mean(x)‖² over the batch.
    pub fvu: f64,
    /// Mean number of codes paid for per position.
    pub l0: f64,
    /// Share of the reconstruction carried by the context path:
    /// Σ‖r_ctx‖² / Σ(‖r_ctx‖² + ‖r_new‖²), with r_ctx and r_new the decoded context and
    /// novel codes (biases left out).
    pub context_share: f64,
}
