//! Causal self-attention from a stacked `qkv` projection: rotary embeddings, grouped-query
//! heads, causal and padding masks, softmax, and the weighted sum of values, giving `z`
//! `[batch, seq, heads, d_head]`. On the CPU one fused kernel does it all per (row, head);
//! elsewhere candle's generic ops do, and a test holds the two equal.

use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};
use rayon::prelude::*;

use crate::error::Result;
use crate::layers::{attention_mask, Rotary};
use crate::simd::{dispatch, exp, max, sum, Kernel};
use gemm::Parallelism;

/// Head layout of the stacked projection: q for all heads, then k, then v.
#[derive(Clone, Copy, Debug)]
pub struct Heads {
    pub heads: usize,
    pub kv_heads: usize,
    pub d_head: usize,
}

/// Rotary tables for the batch's positions, `[batch, seq, rotary_dim / 2]` each.
pub struct RotaryTables<'a> {
    pub rotary: &'a Rotary,
    pub cos: &'a Tensor,
    pub sin: &'a Tensor,
}

pub fn causal_attention(
    qkv: &Tensor,
    heads: Heads,
    rotary: Option<&RotaryTables<'_>>,
    mask: &[u8],
) -> Result<Tensor> {
    // The fused kernel has no backward pass; a value carrying gradients takes the generic ops.
    if qkv.device().is_cpu() && qkv.dtype() == candle_core::DType::F32 && !qkv.track_op() {
        let tables = match rotary {
            Some(r) => Some((
                r.rotary.dim(),
                r.cos.flatten_all()?.to_vec1::<f32>()?,
                r.sin.flatten_all()?.to_vec1::<f32>()?,
            )),
            None => None,
        };
        let op = FusedAttention {
            heads,
            rotary: tables,
            mask: mask.to_vec(),
        };
        Ok(qkv.contiguous()?.apply_op1_no_bwd(&op)?)
    } else {
        generic_attention(qkv, heads, rotary, mask)
    }
}

/// The same computation with candle's generic ops (any device).
pub fn generic_attention(
    qkv: &Tensor,
    heads: Heads,
    rotary: Option<&RotaryTables<'_>>,
    mask: &[u8],
) -> Result<Tensor> {
    let Heads {
        heads: h,
        kv_heads: kv,
        d_head: dh,
    } = heads;
    let (b, t, _) = qkv.dims3()?;
    let split = |start: usize, n: usize| -> Result<Tensor> {
        Ok(qkv
            .narrow(2, start * dh, n * dh)?
            .reshape((b, t, n, dh))?
            .transpose(1, 2)?
            .contiguous()?)
    };
    let (mut q, mut k, v) = (split(0, h)?, split(h, kv)?, split(h + kv, kv)?);
    if let Some(r) = rotary {
        q = r.rotary.apply(&q, r.cos, r.sin)?;
        k = r.rotary.apply(&k, r.cos, r.sin)?;
    }
    // Query heads sharing a key/value head are adjacent: fold them into the row axis.
    let group = h / kv;
    let q = (q.reshape((b, kv, group * t, dh))? * (1.0 / (dh as f64).sqrt()))?;
    let scores = q.matmul(&k.t()?)?.reshape((b, h, t, t))?;
    let scores = scores.broadcast_add(&attention_mask(mask, b, t, qkv.device())?)?;
    let probs = match scores.track_op() {
        true => candle_nn::ops::softmax(&scores, candle_core::D::Minus1)?,
        false => candle_nn::ops::softmax_last_dim(&scores)?,
    };
    let z = probs.reshape((b, kv, group * t, t))?.matmul(&v)?;
    Ok(z.reshape((b, h, t, dh))?.transpose(1, 2)?.contiguous()?)
}

struct FusedAttention {
    heads: Heads,
    /// (rotary dim, cos, sin), tables flattened from `[batch, seq, dim / 2]`.
    rotary: Option<(usize, Vec<f32>, Vec<f32>)>,
    mask: Vec<u8>,
}

impl FusedAttention {
    /// Copies one head's `[seq, d_head]` slice out of a batch row, rotated and scaled.
    fn gather(&self, row: &[f32], b: usize, t: usize, col: usize, scale: f32) -> Vec<f32> {
        let Heads {
            heads,
            kv_heads,
            d_head,
        } = self.heads;
        let stride = (heads + 2 * kv_heads) * d_head;
        let mut out = vec![0f32; t * d_head];
        for pos in 0..t {
            let src = &row[pos * stride + col..pos * stride + col + d_head];
            let dst = &mut out[pos * d_head..(pos + 1) * d_head];
            for (d, s) in dst.iter_mut().zip(src) {
                *d = s * scale;
            }
            if let Some((dim, cos, sin)) = &self.rotary {
                let half = dim / 2;
                let at = (b * t + pos) * half;
                for i in 0..half {
                    let (c, s) = (cos[at + i], sin[at + i]);
                    let (x1, x2) = (dst[i], dst[i + half]);
                    dst[i] = x1 * c - x2 * s;
                    dst[i + half] = x2 * c + x1 * s;
                }
            }
        }
        out
    }

    /// `z [seq, d_head]` for batch row `b`, head `h`. Padding queries get zeros.
    fn head(&self, row: &[f32], b: usize, t: usize, h: usize) -> Vec<f32> {
        let Heads {
            heads,
            kv_heads,
            d_head: dh,
        } = self.heads;
        let kvh = h / (heads / kv_heads);
        let stride = (heads + 2 * kv_heads) * dh;
        let q = self.gather(row, b, t, h * dh, 1.0 / (dh as f32).sqrt());
        let k = self.gather(row, b, t, (heads + kvh) * dh, 1.0);
        let v = &row[(heads + kv_heads + kvh) * dh..];
        let mut scores = vec![0f32; t * t];
        let mut z = vec![0f32; t * dh];
        // Causal: queries in rows [r0, r1) only see keys [0, r1), so blocks of rows skip
        // the keys after them (about a third of the work at 128 tokens).
        for r0 in (0..t).step_by(CAUSAL_BLOCK) {
            let r1 = (r0 + CAUSAL_BLOCK).min(t);
            // scores[r0..r1, ..r1] = q[r0..r1] · k[..r1]ᵀ
            matmul_strided(
                (r1 - r0, r1, dh),
                (&mut scores[r0 * t..], t),
                (&q[r0 * dh..], dh),
                (&k, 1, dh),
            );
        }
        dispatch(MaskedSoftmax {
            scores: &mut scores,
            mask: &self.mask[b * t..(b + 1) * t],
        });
        for r0 in (0..t).step_by(CAUSAL_BLOCK) {
            let r1 = (r0 + CAUSAL_BLOCK).min(t);
            // z[r0..r1] = weights[r0..r1, ..r1] · v[..r1]
            matmul_strided(
                (r1 - r0, dh, r1),
                (&mut z[r0 * dh..], dh),
                (&scores[r0 * t..], t),
                (v, stride, 1),
            );
        }
        z
    }
}

/// Rows per block of the causal product.
const CAUSAL_BLOCK: usize = 32;

/// `dst = lhs · rhs` for `(m, n, k)`, on row-major slices with explicit strides:
/// `dst` and `lhs` by (slice, row stride), `rhs` by (slice, row stride, column stride).
fn matmul_strided(
    (m, n, k): (usize, usize, usize),
    (dst, dst_rs): (&mut [f32], usize),
    (lhs, lhs_rs): (&[f32], usize),
    (rhs, rhs_rs, rhs_cs): (&[f32], usize, usize),
) {
    assert!(m > 0 && n > 0 && k > 0);
    assert!(dst.len() >= (m - 1) * dst_rs + n, "dst too short");
    assert!(lhs.len() >= (m - 1) * lhs_rs + k, "lhs too short");
    assert!(
        rhs.len() > (k - 1) * rhs_rs + (n - 1) * rhs_cs,
        "rhs too short"
    );
    // SAFETY: the assertions above keep every index gemm forms inside the slices.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_rs as isize,
            false,
            lhs.as_ptr(),
            1,
            lhs_rs as isize,
            rhs.as_ptr(),
            rhs_cs as isize,
            rhs_rs as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            Parallelism::None,
        );
    }
}

/// Turns raw scores `[seq, seq]` into causal, padding-masked attention weights in place.
/// Rows of padding queries become zeros.
struct MaskedSoftmax<'a> {
    scores: &'a mut [f32],
    mask: &'a [u8],
}

impl Kernel for MaskedSoftmax<'_> {
    type Output = ();

    #[inline(always)]
    fn run<const FMA: bool>(self) {
        let t = self.mask.len();
        let bias: Vec<f32> = self
            .mask
            .iter()
            .map(|&m| if m != 0 { 0.0 } else { f32::NEG_INFINITY })
            .collect();
        let keep: Vec<f32> = self.mask.iter().map(|&m| f32::from(m)).collect();
        for (i, row) in self.scores.chunks_exact_mut(t).enumerate() {
            let (visible, future) = row.split_at_mut(i + 1);
            future.fill(0.0);
            if self.mask[i] == 0 {
                visible.fill(0.0);
                continue;
            }
            for (s, b) in visible.iter_mut().zip(&bias) {
                *s += b;
            }
            let max = max(visible);
            for (s, k) in visible.iter_mut().zip(&keep) {
                *s = exp::<FMA>(*s - max) * k;
            }
            let inv = 1.0 / sum(visible);
            visible.iter_mut().for_each(|s| *s *= inv);
        }
    }
}

impl CustomOp1 for FusedAttention {
    fn name(&self) -> &'static str {
        "fused-causal-attention"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let Heads {
            heads,
            kv_heads,
            d_head,
        } = self.heads;
        let (b, t, width) = l.shape().dims3()?;
        if width != (heads + 2 * kv_heads) * d_head || self.mask.len() != b * t {
            candle_core::bail!(
                "fused attention: qkv {:?} does not match the head layout",
                l.shape()
            );
        }
        let data = match l.contiguous_offsets() {
            Some((start, end)) => &s.as_slice::<f32>()?[start..end],
            None => candle_core::bail!("fused attention: qkv must be contiguous"),
        };
        let per_head: Vec<Vec<f32>> = (0..b * heads)
            .into_par_iter()
            .map(|bh| {
                let (row, h) = (bh / heads, bh % heads);
                self.head(&data[row * t * width..(row + 1) * t * width], row, t, h)
            })
            .collect();
        let mut out = vec![0f32; b * t * heads * d_head];
        for (bh, z) in per_head.iter().enumerate() {
            let (row, h) = (bh / heads, bh % heads);
            for pos in 0..t {
                let dst = ((row * t + pos) * heads + h) * d_head;
                out[dst..dst + d_head].copy_from_slice(&z[pos * d_head..(pos + 1) * d_head]);
            }
        }
        Ok((CpuStorage::F32(out), Shape::from((b, t, heads, d_head))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn fused_kernel_equals_generic_ops_with_gqa_partial_rotary_and_padding() {
        let dev = Device::Cpu;
        for (heads, kv, dh, rot) in [(4usize, 2usize, 8usize, 8usize), (3, 3, 8, 4), (2, 1, 4, 0)] {
            let (b, t) = (3usize, 7usize);
            let width = (heads + 2 * kv) * dh;
            let qkv = Tensor::randn(0f32, 1.0, (b, t, width), &dev).unwrap();
            // Row 0 unpadded, row 1 left-padded, row 2 right-padded.
            let mask: Vec<u8> = [[1u8; 7], [0, 0, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0, 0]].concat();
            let positions: Vec<u32> = [
                [0u32, 1, 2, 3, 4, 5, 6],
                [0, 0, 0, 1, 2, 3, 4],
                [0, 1, 2, 3, 0, 0, 0],
            ]
            .concat();
            let rotary = (rot > 0).then(|| Rotary::new(rot, 10_000.0, 16, &dev).unwrap());
            let pos = Tensor::from_vec(positions, (b, t), &dev).unwrap();
            let tables = rotary.as_ref().map(|r| r.tables(&pos).unwrap());
            let rt = match (&rotary, &tables) {
                (Some(rotary), Some((cos, sin))) => Some(RotaryTables { rotary, cos, sin }),
                _ => None,
            };
            let h = Heads {
                heads,
                kv_heads: kv,
                d_head: dh,
            };
            let fused = causal_attention(&qkv, h, rt.as_ref(), &mask).unwrap();
            let generic = generic_attention(&qkv, h, rt.as_ref(), &mask).unwrap();
            let f = fused.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let g = generic.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let row = t * heads * dh;
            for (i, (x, y)) in f.iter().zip(&g).enumerate() {
                let (r, pos) = (i / row, (i % row) / (heads * dh));
                if mask[r * t + pos] != 0 {
                    assert!(
                        (x - y).abs() < 1e-5,
                        "heads {heads}/{kv} rot {rot} at {i}: {x} vs {y}"
                    );
                }
            }
        }
    }
}
