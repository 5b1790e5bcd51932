//! Helpers the family loaders share to pull checked tensors out of a weight source.

use candle_core::Tensor;

use crate::config::{ModelConfig, NormKind};
use crate::error::Result;
use crate::layers::Norm;
use crate::linear::Linear;
use crate::weights::WeightSource;

pub fn norm(
    src: &mut dyn WeightSource,
    cfg: &ModelConfig,
    weight: &str,
    bias: Option<&str>,
) -> Result<Norm> {
    let d = [cfg.d_model];
    let bias = match (cfg.norm, bias) {
        (NormKind::Layer, Some(b)) => Some(src.tensor_shaped(b, &d)?),
        _ => None,
    };
    Ok(Norm {
        kind: cfg.norm,
        weight: src.tensor_shaped(weight, &d)?,
        bias,
        eps: cfg.norm_eps as f32,
    })
}

/// A `[out, in]` linear layer with an optional `[out]` bias.
pub fn linear(
    src: &mut dyn WeightSource,
    weight: &str,
    bias: Option<&str>,
    out: usize,
    inp: usize,
) -> Result<Linear> {
    let w = src.tensor_shaped(weight, &[out, inp])?;
    let b = match bias {
        Some(b) => Some(src.tensor_shaped(b, &[out])?),
        None => None,
    };
    Linear::new(w, b)
}

/// Stacks linear layers along the output axis (q, k, v → qkv; gate, up → gate_up).
pub fn stack(parts: &[Linear]) -> Result<Linear> {
    let weights: Vec<Tensor> = parts.iter().map(Linear::weight).collect();
    let weight = Tensor::cat(&weights, 0)?;
    let bias = if parts.iter().all(|p| p.bias().is_some()) {
        let biases: Vec<&Tensor> = parts.iter().filter_map(Linear::bias).collect();
        Some(Tensor::cat(&biases, 0)?)
    } else {
        None
    };
    Linear::new(weight, bias)
}
