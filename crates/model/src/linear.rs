//! Dense layers. On the CPU the product runs through faer, which is faster than candle's own
//! matmul on the shapes a transformer uses; elsewhere it falls back to candle. Gradients flow
//! to the input only (the model's weights are constants here): enough for a loss measured
//! downstream of a hook to reach the value spliced there.

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
        Ok(x.apply_op2(w, FaerMatmul)?)
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
        let mut out: Vec<f32> = Vec::with_capacity(n * m);
        // The output is not zeroed first: that pass over memory cost a few percent of a
        // forward. SAFETY: the view covers exactly the allocated n × m floats, and with
        // `Accum::Replace` faer writes every element and reads none (the test
        // `replace_never_reads_the_destination` checks it), so all n × m are initialised
        // before `set_len`.
        unsafe {
            faer_matmul(
                MatMut::from_raw_parts_mut(out.as_mut_ptr(), n, m, m as isize, 1),
                Accum::Replace,
                MatRef::from_row_major_slice(x, n, k),
                MatRef::from_row_major_slice(w, k, m),
                1.0f32,
                Par::rayon(0),
            );
            out.set_len(n * m);
        }
        Ok((CpuStorage::F32(out), Shape::from((n, m))))
    }

    /// ∂/∂x = grad · wᵀ; no gradient for the weight.
    fn bwd(
        &self,
        _x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let grad_x = grad
            .contiguous()?
            .apply_op2_no_bwd(&w.t()?.contiguous()?, &FaerMatmul)?;
        Ok((Some(grad_x), None))
    }
}

fn contiguous_f32<'a>(s: &'a CpuStorage, l: &Layout) -> candle_core::Result<&'a [f32]> {
    let data = s.as_slice::<f32>()?;
    match l.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("matmul: operand must be contiguous"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The output buffer is left uninitialised on the promise that `Accum::Replace` never
    /// reads it: a destination full of NaN must not leak into the product.
    #[test]
    fn replace_never_reads_the_destination() {
        let (n, k, m) = (37, 19, 23);
        let a: Vec<f32> = (0..n * k).map(|i| (i % 7) as f32 - 3.0).collect();
        let b: Vec<f32> = (0..k * m).map(|i| (i % 5) as f32 * 0.5).collect();
        let mut dst = vec![f32::NAN; n * m];
        faer_matmul(
            MatMut::from_row_major_slice_mut(&mut dst, n, m),
            Accum::Replace,
            MatRef::from_row_major_slice(&a, n, k),
            MatRef::from_row_major_slice(&b, k, m),
            1.0f32,
            Par::rayon(0),
        );
        for i in 0..n {
            for j in 0..m {
                let want: f32 = (0..k).map(|p| a[i * k + p] * b[p * m + j]).sum();
                assert!((dst[i * m + j] - want).abs() < 1e-3, "({i}, {j})");
            }
        }
    }

    #[test]
    fn linear_matches_a_plain_product_with_bias() {
        let dev = candle_core::Device::Cpu;
        let w = Tensor::randn(0f32, 1.0, (5, 3), &dev).unwrap();
        let b = Tensor::randn(0f32, 1.0, 5, &dev).unwrap();
        let x = Tensor::randn(0f32, 1.0, (2, 4, 3), &dev).unwrap();
        let got = Linear::new(w.clone(), Some(b.clone()))
            .unwrap()
            .forward(&x)
            .unwrap();
        let want = x
            .broadcast_matmul(&w.t().unwrap())
            .unwrap()
            .broadcast_add(&b)
            .unwrap();
        let diff = (got - want).unwrap().abs().unwrap().max_all().unwrap();
        assert!(diff.to_scalar::<f32>().unwrap() < 1e-5);
    }
}
