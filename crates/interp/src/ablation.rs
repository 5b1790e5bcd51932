//! Token-ablation attribution (seed 002's "ablated text"): how much a feature's activation
//! at one position depends on each earlier token of its context.
//!
//! A token is *removed* by masking it out of attention: no later position can attend to it,
//! and since positions count real tokens only, every later token moves back by one. That is
//! the forward of the same text with the token deleted, without re-tokenising it.

use std::ops::Range;

use candle_core::IndexOp;
use saelab_model::{Batch, HookPoint, Hooks, Transformer};
use saelab_sae::{Dictionary, Sae};

use crate::error::{InterpError, Result};

/// How a token is removed, as recorded next to every ablation.
pub const METHOD: &str = "removed: masked out of attention, later positions shift back by one \
                          (the forward of the text with that token deleted)";

#[derive(Clone, Debug, PartialEq)]
pub struct Ablation {
    /// The feature's activation at the position with nothing removed.
    pub base: f32,
    /// For each position of the ablated range, the activation with that token removed minus
    /// `base`; NaN where the token was kept (special tokens: start, separator).
    pub deltas: Vec<f32>,
}

/// What to ablate: the `feature` of `sae` at position `pos` of `ids` (the window up to at
/// least `pos`), removing each token of `range` (positions before `pos`) in turn.
pub struct AblationRequest<'a> {
    pub hook: HookPoint,
    pub ids: &'a [u32],
    pub pos: usize,
    pub feature: usize,
    pub range: Range<usize>,
}

/// One batched forward to the hook: a row with nothing removed, then a row per ablated
/// token. `keep(id)` says which tokens are never removed.
pub fn ablate(
    model: &Transformer,
    sae: &Sae,
    request: &AblationRequest<'_>,
    keep: impl Fn(u32) -> bool,
) -> Result<Ablation> {
    let AblationRequest {
        hook,
        ids,
        pos,
        feature,
        ref range,
    } = *request;
    if pos >= ids.len() || range.end > pos || range.start > range.end {
        return Err(InterpError::invalid(
            "ablation",
            format!(
                "position {pos} and range {range:?} do not fit a context of {} tokens",
                ids.len()
            ),
        ));
    }
    if feature >= sae.d_sae() {
        return Err(InterpError::invalid(
            "feature",
            format!(
                "{feature} is outside the dictionary's {} features",
                sae.d_sae()
            ),
        ));
    }
    let seq = pos + 1;
    let removed: Vec<usize> = range.clone().filter(|&j| !keep(ids[j])).collect();
    let rows = 1 + removed.len();
    let mut batch_ids = Vec::with_capacity(rows * seq);
    let mut mask = Vec::with_capacity(rows * seq);
    for row in 0..rows {
        batch_ids.extend_from_slice(&ids[..seq]);
        mask.extend((0..seq).map(|t| u8::from(row == 0 || t != removed[row - 1])));
    }
    let batch = Batch::from_parts(batch_ids, mask, rows, seq)?;
    let out = model.forward(&batch, &mut Hooks::capture([hook]))?;
    let value = out
        .get(hook)
        .ok_or_else(|| InterpError::invalid("hook", format!("{hook}: no value was read")))?;
    let at_pos = value
        .i((.., pos, ..))?
        .to_dtype(candle_core::DType::F32)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    let features = sae.encode(&at_pos)?;
    let activation = |row: usize| {
        let (idx, val) = features.row(row);
        idx.binary_search(&(feature as u32)).map_or(0.0, |k| val[k])
    };
    let base = activation(0);
    let mut deltas = vec![f32::NAN; range.len()];
    for (row, &j) in removed.iter().enumerate() {
        deltas[j - range.start] = activation(row + 1) - base;
    }
    Ok(Ablation { base, deltas })
}
