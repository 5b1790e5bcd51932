//! The number format of cached activations: f32 (exact), or f16 / bf16 at half the bytes.

use std::str::FromStr;

use half::slice::{HalfBitsSliceExt, HalfFloatSliceExt};
use half::{bf16, f16};
use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheDtype {
    F32,
    F16,
    Bf16,
}

impl FromStr for CacheDtype {
    type Err = DataError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "f32" | "float32" => Ok(CacheDtype::F32),
            "f16" | "float16" => Ok(CacheDtype::F16),
            "bf16" | "bfloat16" => Ok(CacheDtype::Bf16),
            other => Err(DataError::invalid(
                "dtype",
                format!("unknown dtype `{other}` (f32, f16 or bf16)"),
            )),
        }
    }
}

impl CacheDtype {
    pub fn bytes(self) -> usize {
        match self {
            CacheDtype::F32 => 4,
            CacheDtype::F16 | CacheDtype::Bf16 => 2,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            CacheDtype::F32 => "f32",
            CacheDtype::F16 => "f16",
            CacheDtype::Bf16 => "bf16",
        }
    }

    pub fn safetensors(self) -> safetensors::Dtype {
        match self {
            CacheDtype::F32 => safetensors::Dtype::F32,
            CacheDtype::F16 => safetensors::Dtype::F16,
            CacheDtype::Bf16 => safetensors::Dtype::BF16,
        }
    }

    /// Appends `values` in this format, little-endian.
    pub fn encode(self, values: &[f32], out: &mut Vec<u8>) {
        match self {
            CacheDtype::F32 => {
                for v in values {
                    out.extend_from_slice(&v.to_le_bytes());
                }
            }
            CacheDtype::F16 => {
                let mut half = vec![f16::ZERO; values.len()];
                half.convert_from_f32_slice(values);
                push_bits(half.reinterpret_cast(), out);
            }
            CacheDtype::Bf16 => {
                let mut half = vec![bf16::ZERO; values.len()];
                half.convert_from_f32_slice(values);
                push_bits(half.reinterpret_cast(), out);
            }
        }
    }

    /// Reads `bytes` (a whole number of values) back as f32.
    pub fn decode(self, bytes: &[u8], out: &mut Vec<f32>) {
        match self {
            CacheDtype::F32 => out.extend(
                bytes
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            ),
            CacheDtype::F16 | CacheDtype::Bf16 => {
                let bits: Vec<u16> = bytes
                    .chunks_exact(2)
                    .map(|b| u16::from_le_bytes([b[0], b[1]]))
                    .collect();
                let start = out.len();
                out.resize(start + bits.len(), 0.0);
                if self == CacheDtype::F16 {
                    bits.reinterpret_cast::<f16>()
                        .convert_to_f32_slice(&mut out[start..]);
                } else {
                    bits.reinterpret_cast::<bf16>()
                        .convert_to_f32_slice(&mut out[start..]);
                }
            }
        }
    }
}

fn push_bits(bits: &[u16], out: &mut Vec<u8>) {
    for b in bits {
        out.extend_from_slice(&b.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let values = [0.0f32, 1.5, -2.25, 1e-3, 65504.0, -0.1];
        for dtype in [CacheDtype::F32, CacheDtype::F16, CacheDtype::Bf16] {
            let mut bytes = Vec::new();
            dtype.encode(&values, &mut bytes);
            assert_eq!(bytes.len(), values.len() * dtype.bytes());
            let mut back = Vec::new();
            dtype.decode(&bytes, &mut back);
            let tolerance = match dtype {
                CacheDtype::F32 => 0.0,
                CacheDtype::F16 => 1e-3,
                CacheDtype::Bf16 => 8e-3,
            };
            for (a, b) in values.iter().zip(&back) {
                assert!(
                    (a - b).abs() <= tolerance * a.abs(),
                    "{dtype:?}: {a} vs {b}"
                );
            }
        }
        assert!("f8"
            .parse::<CacheDtype>()
            .unwrap_err()
            .to_string()
            .contains("dtype"));
    }
}
