//! Steering directions from labelled documents: the mean activation of one class minus the
//! mean of the other (inference-time intervention's mass-mean direction), at one hook.

use saelab_model::{HookPoint, LoadedModel};

use crate::collect::{collect, CollectOptions, Positions};
use crate::labels::LabelledDocuments;
use crate::matrix::class_means;
use crate::{ProbeError, Result};

/// A mean-difference direction and what it was made from.
pub struct MeanDifference {
    /// `mean(class 1) − mean(class 0)` in the hook's units.
    pub direction: Vec<f32>,
    /// Documents on each side.
    pub documents: [usize; 2],
}

/// The mean over documents of each document's mean activation (tokens after the start
/// token), class 1 minus class 0 of the first label of `docs`, which must be binary.
pub fn mean_difference(
    loaded: &LoadedModel,
    docs: &LabelledDocuments,
    hook: HookPoint,
    ctx: usize,
    batch: usize,
    progress: &mut dyn FnMut(usize),
) -> Result<MeanDifference> {
    if docs.classes.first().map(Vec::len) != Some(2) {
        return Err(ProbeError::invalid(
            "label",
            "a mean difference needs a binary label (FIELD=VALUE or contains:WORD)",
        ));
    }
    let options = CollectOptions {
        ctx,
        positions: Positions::Mean,
        batch,
        seed: 0,
    };
    let collected = collect(loaded, &docs.texts, &[hook], &[], &options, progress)?;
    let rep = &collected.representations[0];
    let labels: Vec<u32> = collected
        .row_document
        .iter()
        .map(|&d| docs.labels[0][d])
        .collect();
    let means = class_means(&rep.values, rep.dim, &labels, 2);
    let counts = docs.class_counts(0);
    Ok(MeanDifference {
        direction: means[1]
            .iter()
            .zip(&means[0])
            .map(|(p, n)| (p - n) as f32)
            .collect(),
        documents: [counts[0], counts[1]],
    })
}
