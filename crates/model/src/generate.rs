//! Greedy decoding.

use candle_core::IndexOp;

use crate::batch::Batch;
use crate::error::{ModelError, Result};
use crate::hooks::{HookPoint, Hooks};
use crate::transformer::Transformer;

impl Transformer {
    /// Logits at the last position of a single unpadded row; only that row is unembedded.
    pub fn next_token_logits(&self, ids: &[u32]) -> Result<Vec<f32>> {
        let out = self.forward(
            &Batch::single(ids),
            &mut Hooks::capture([HookPoint::LnFinal]),
        )?;
        let normed = out
            .get(HookPoint::LnFinal)
            .ok_or_else(|| ModelError::Invalid("forward returned no final activations".into()))?;
        let last = normed.i((.., ids.len() - 1..ids.len(), ..))?.contiguous()?;
        Ok(self
            .unembed
            .forward(&last)?
            .flatten_all()?
            .to_vec1::<f32>()?)
    }

    /// Appends up to `max_new` greedy tokens to `prompt`, stopping after `stop` if it is
    /// produced. Returns only the new ids.
    pub fn generate_greedy(
        &self,
        prompt: &[u32],
        max_new: usize,
        stop: Option<u32>,
    ) -> Result<Vec<u32>> {
        if prompt.is_empty() {
            return Err(ModelError::Invalid(
                "the prompt encodes to no tokens".into(),
            ));
        }
        // Saturating: a huge `max_new` is too long, not a wrapped-around small total.
        let total = prompt.len().saturating_add(max_new);
        if total > self.cfg.context_length {
            return Err(ModelError::TooLong {
                what: format!(
                    "the prompt ({} tokens) plus --max-tokens ({max_new})",
                    prompt.len()
                ),
                tokens: total,
                context: self.cfg.context_length,
            });
        }
        let mut ids = prompt.to_vec();
        let mut new = Vec::with_capacity(max_new);
        for _ in 0..max_new {
            let next = argmax(&self.next_token_logits(&ids)?);
            ids.push(next);
            new.push(next);
            if Some(next) == stop {
                break;
            }
        }
        Ok(new)
    }
}

/// Index of the largest value; the first one on ties, as PyTorch's argmax.
pub fn argmax(values: &[f32]) -> u32 {
    let mut best = 0;
    for (i, v) in values.iter().enumerate() {
        if *v > values[best] {
            best = i;
        }
    }
    best as u32
}
