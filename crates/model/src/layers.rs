//! The pieces of a block: normalisation, rotary embeddings, activations.

use candle_core::{DType, Device, Tensor};

use crate::config::{Activation, NormKind};
use crate::error::Result;

#[derive(Clone, Debug)]
pub struct Norm {
    pub kind: NormKind,
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    pub eps: f32,
}

impl Norm {
    /// The fused kernels have no backward pass: a value that carries gradients (see
    /// `linear.rs`) goes through the same formula in candle's differentiable ops.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = x.contiguous()?;
        if x.track_op() {
            return Ok(match (self.kind, &self.bias) {
                (NormKind::Rms, _) => candle_nn::ops::rms_norm_slow(&x, &self.weight, self.eps)?,
                (NormKind::Layer, Some(b)) => {
                    candle_nn::ops::layer_norm_slow(&x, &self.weight, b, self.eps)?
                }
                (NormKind::Layer, None) => {
                    let zero = self.weight.zeros_like()?;
                    candle_nn::ops::layer_norm_slow(&x, &self.weight, &zero, self.eps)?
                }
            });
        }
        Ok(match self.kind {
            NormKind::Rms => candle_nn::ops::rms_norm(&x, &self.weight, self.eps)?,
            NormKind::Layer => {
                let bias = match &self.bias {
                    Some(b) => b.clone(),
                    None => self.weight.zeros_like()?,
                };
                candle_nn::ops::layer_norm(&x, &self.weight, &bias, self.eps)?
            }
        })
    }
}

pub fn activate(x: &Tensor, act: Activation) -> Result<Tensor> {
    Ok(match act {
        Activation::Silu => x.silu()?,
        Activation::GeluErf => x.gelu_erf()?,
        Activation::GeluTanh => x.gelu()?,
        Activation::Relu => x.relu()?,
    })
}

/// Cosine and sine tables `[context, rotary_dim / 2]` for rotary embeddings in the
/// "rotate half" layout used by Hugging Face checkpoints.
#[derive(Clone, Debug)]
pub struct Rotary {
    cos: Tensor,
    sin: Tensor,
    dim: usize,
}

impl Rotary {
    pub fn new(dim: usize, theta: f32, context: usize, device: &Device) -> Result<Self> {
        let half = dim / 2;
        let mut cos = Vec::with_capacity(context * half);
        let mut sin = Vec::with_capacity(context * half);
        for pos in 0..context {
            for i in 0..half {
                // Same f32 inverse frequencies as the reference implementation.
                let inv_freq = 1.0f32 / theta.powf((2 * i) as f32 / dim as f32);
                let angle = pos as f32 * inv_freq;
                cos.push(angle.cos());
                sin.push(angle.sin());
            }
        }
        Ok(Rotary {
            cos: Tensor::from_vec(cos, (context, half), device)?,
            sin: Tensor::from_vec(sin, (context, half), device)?,
            dim,
        })
    }

    /// How many leading features of each head rotate.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Tables for the given positions, shaped `[batch, seq, dim / 2]`.
    pub fn tables(&self, positions: &Tensor) -> Result<(Tensor, Tensor)> {
        let (b, t) = positions.dims2()?;
        let flat = positions.flatten_all()?;
        let cos = self
            .cos
            .index_select(&flat, 0)?
            .reshape((b, t, self.dim / 2))?;
        let sin = self
            .sin
            .index_select(&flat, 0)?
            .reshape((b, t, self.dim / 2))?;
        Ok((cos, sin))
    }

    /// Rotates the first `dim` features of `x [batch, heads, seq, d_head]`.
    pub fn apply(&self, x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
        let d_head = x.dim(3)?;
        let rope = |x: &Tensor| -> Result<Tensor> {
            match x.track_op() {
                true => rope_differentiable(x, cos, sin),
                false => Ok(candle_nn::rotary_emb::rope(&x.contiguous()?, cos, sin)?),
            }
        };
        if self.dim == d_head {
            return rope(x);
        }
        let rotated = rope(&x.narrow(3, 0, self.dim)?.contiguous()?)?;
        let rest = x.narrow(3, self.dim, d_head - self.dim)?;
        Ok(Tensor::cat(&[&rotated, &rest], 3)?)
    }
}

/// Rotate-half rotary embedding of `x [batch, heads, seq, dim]` with tables
/// `[batch, seq, dim / 2]`, in ops that have a backward pass.
fn rope_differentiable(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    let half = x.dim(3)? / 2;
    let cos = Tensor::cat(&[cos, cos], 2)?.unsqueeze(1)?;
    let sin = Tensor::cat(&[sin, sin], 2)?.unsqueeze(1)?;
    let (x1, x2) = (x.narrow(3, 0, half)?, x.narrow(3, half, half)?);
    let rotated = Tensor::cat(&[&x2.neg()?, &x1], 3)?;
    Ok((x.broadcast_mul(&cos)? + rotated.broadcast_mul(&sin)?)?)
}

/// Additive attention mask `[batch, 1, seq, seq]`: 0 where a query may attend to a key
/// (causal and not padding), a large negative number elsewhere. Rows with no valid key
/// (queries at left padding) become uniform instead of NaN; they are padding anyway.
pub fn attention_mask(mask: &[u8], batch: usize, seq: usize, device: &Device) -> Result<Tensor> {
    let mut data = vec![f32::MIN; batch * seq * seq];
    for b in 0..batch {
        for q in 0..seq {
            for k in 0..=q {
                if mask[b * seq + k] != 0 {
                    data[(b * seq + q) * seq + k] = 0.0;
                }
            }
        }
    }
    Ok(Tensor::from_vec(data, (batch, 1, seq, seq), device)?.to_dtype(DType::F32)?)
}
