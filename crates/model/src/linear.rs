//! Dense layers. On the CPU the product runs through faer, which is faster than candle's own
//! matmul on the shapes a transformer uses; elsewhere it falls back to candle.

use candle_core::{CpuStorage, CustomOp2, Device, Layout, Shape, Tensor};
use faer::linalg::matmul::matmul as faer_matmul;
use faer::{Accum, MatMut, MatRef, Par};

use crate::error::Result;

/// `y = x Wᵀ + b`, built from `W [out, in]` as in PyTorch but kept transposed, `[in, out]`
/// contiguous, the layout faer multiplies fastest.
#[derive(Clone, Debug)]
pub struct Linear {
    weight_t: Tensor,
    bias: Option<Tensor>,
}

impl Linear {
    pub fn new(weight: Tensor, bias: Option<Tensor>) -> Result<Self> {
        let weight_t = weight.t()?.contiguous()?;
        Ok(Linear { weight_t, bias })
    }

    /// `W [out, in]` (a transposed view).
    pub fn weight(&self) -> Tensor {
        self.weight_t.t().expect("a 2-D weight transposes")
    }

    pub fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
    }

    pub fn out_features(&self) -> usize {
        self.weight_t.dims()[1]
    }

    /// Applies the layer to the last dimension of `x`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dims = x.dims().to_vec();
        let d_in = *dims.last().unwrap_or(&0);
        let rows = x.elem_count() / d_in.max(1);
        let flat = x.reshape((rows, d_in))?.contiguous()?;
        let mut y = matmul(&flat, &self.weight_t)?;
        if let Some(b) = &self.bias {
            y = y.broadcast_add(b)?;
        }
        let mut out_dims = dims;
        *out_dims.last_mut().expect("x has at least one dimension") = self.out_features();
        Ok(y.reshape(out_dims)?)
    }
}

/// `x [n, k] · w [k, m] → [n, m]`.
pub fn matmul(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    if matches!(x.device(), Device::Cpu) && x.dtype() == candle_core::DType::F32 {
        Ok(x.apply_op2_no_bwd(w, &FaerMatmul)?)
    } else {
        Ok(x.matmul(w)?)
    }
}

struct FaerMatmul;

impl CustomOp2 for FaerMatmul {
    fn name(&self) -> &'static str {
        "faer-matmul"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (n, k) = l1.shape().dims2()?;
        let (k2, m) = l2.shape().dims2()?;
        if k != k2 {
            candle_core::bail!("matmul: inner dimensions differ ({k} vs {k2})");
        }
        let x = contiguous_f32(s1, l1)?;
        let w = contiguous_f32(s2, l2)?;
        let mut out = vec![0f32; n * m];
        faer_matmul(
            MatMut::from_row_major_slice_mut(&mut out, n, m),
            Accum::Replace,
            MatRef::from_row_major_slice(x, n, k),
            MatRef::from_row_major_slice(w, k, m),
            1.0f32,
            Par::rayon(0),
        );
        Ok((CpuStorage::F32(out), Shape::from((n, m))))
    }
}

fn contiguous_f32<'a>(s: &'a CpuStorage, l: &Layout) -> candle_core::Result<&'a [f32]> {
    let data = s.as_slice::<f32>()?;
    match l.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("matmul: operand must be contiguous"),
    }
}
