//! A loss measured downstream of a dictionary's reconstruction, for end-to-end training: the
//! model's KL from its clean distributions (or its CE) with x̂ spliced at the hook, and the
//! gradient of that loss with respect to x̂, back through every block after the hook.
//!
//! The gradient is candle's autograd through the model's differentiable path (the fused
//! kernels step aside for values that carry gradients: `saelab_model::linear`), seeded at the
//! logits with the hand-derived ∂L/∂logits of `cross_entropy.rs`, so the 50k-wide softmax is
//! never differentiated op by op.

use candle_core::{Tensor, Var};
use saelab_model::{Batch, HookPoint, Hooks, Transformer};

use crate::cross_entropy::{CleanDistributions, DownstreamLoss};
use crate::error::Result;

/// One batch's downstream loss for a dictionary spliced at `hook`.
pub struct SplicedLoss<'a> {
    pub model: &'a Transformer,
    pub batch: &'a Batch,
    pub hook: HookPoint,
    /// The block to restart the forward from and its `hook_resid_pre` value (from the clean
    /// forward), or `None` to run the model from the start.
    pub start: Option<(usize, &'a Tensor)>,
    /// The clean value at `hook`, `[batch, seq, width]`: kept where nothing is spliced.
    pub clean_value: &'a Tensor,
    /// Flattened `[window, position]` rows where x̂ replaces the clean value.
    pub splice: &'a [bool],
    pub distributions: &'a CleanDistributions,
    pub loss: DownstreamLoss,
}

impl SplicedLoss<'_> {
    /// The loss with `x_hat` (`[n, width]`, one row per spliced position in row order)
    /// spliced in, and ∂loss/∂x_hat in the same layout.
    pub fn loss_and_grad(&self, x_hat: &[f32]) -> Result<(f64, Vec<f32>)> {
        let dims = self.clean_value.dims().to_vec();
        let width = *dims.last().expect("a hook value has a width");
        let mut value = self
            .clean_value
            .to_dtype(candle_core::DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let spliced_rows: Vec<usize> = (0..self.splice.len()).filter(|&r| self.splice[r]).collect();
        if x_hat.len() != spliced_rows.len() * width {
            return Err(crate::error::EvalError::invalid(
                "x_hat",
                format!(
                    "holds {} values for {} spliced positions of width {width}",
                    x_hat.len(),
                    spliced_rows.len()
                ),
            ));
        }
        for (k, &r) in spliced_rows.iter().enumerate() {
            value[r * width..(r + 1) * width].copy_from_slice(&x_hat[k * width..(k + 1) * width]);
        }
        let var = Var::from_vec(value, dims, self.clean_value.device())?;
        let edited = var.as_tensor().clone();
        let mut hooks = Hooks::logits().edit(self.hook, move |_| Ok(edited.clone()));
        let out = match self.start {
            Some((layer, resid)) => self
                .model
                .forward_from(self.batch, layer, resid, &mut hooks)?,
            None => self.model.forward(self.batch, &mut hooks)?,
        };
        let logits = out.logits.expect("logits were asked for");
        let flat_logits = logits.flatten_all()?.to_vec1::<f32>()?;
        let (loss, logit_grad) = self
            .distributions
            .loss_and_logit_gradient(&flat_logits, self.loss);
        drop(flat_logits);
        // ∂/∂logits of Σ logits · G is G: backward from it carries G to the spliced value.
        let seed = Tensor::from_vec(logit_grad, logits.dims(), logits.device())?;
        let grads = (logits * seed)?.sum_all()?.backward()?;
        let grad = match grads.get(var.as_tensor()) {
            Some(g) => g.flatten_all()?.to_vec1::<f32>()?,
            // No path from the hook to a counted logit (nothing counted): a zero gradient.
            None => vec![0.0; self.splice.len() * width],
        };
        let mut out = Vec::with_capacity(x_hat.len());
        for &r in &spliced_rows {
            out.extend_from_slice(&grad[r * width..(r + 1) * width]);
        }
        Ok((loss, out))
    }
}
