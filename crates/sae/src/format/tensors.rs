//! Reading and writing named f32 tensors in safetensors files. Reading accepts every float
//! dtype other tools save in (f16, bf16, f64) and converts to f32, as SAELens casts to its
//! configured dtype on load.

use std::path::Path;

use safetensors::{Dtype, SafeTensors};

use crate::error::{Result, SaeError};

/// Serialises `(name, shape, data)` triples (little-endian f32).
pub fn to_bytes(path: &Path, tensors: &[(&str, Vec<usize>, &[f32])]) -> Result<Vec<u8>> {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, _, data)| data.iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    let views = tensors
        .iter()
        .zip(&bytes)
        .map(|((name, shape, _), b)| {
            safetensors::tensor::TensorView::new(Dtype::F32, shape.clone(), b)
                .map(|v| (name.to_string(), v))
        })
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| safetensors_error(path, e))?;
    safetensors::tensor::serialize(views, None).map_err(|e| safetensors_error(path, e))
}

fn safetensors_error(path: &Path, e: safetensors::SafeTensorError) -> SaeError {
    SaeError::Safetensors {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// An opened safetensors file: its bytes and path, for errors that name both.
pub struct TensorFile {
    path: std::path::PathBuf,
    bytes: Vec<u8>,
}

impl TensorFile {
    pub fn open(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| SaeError::io(path, e))?;
        SafeTensors::deserialize(&bytes).map_err(|e| safetensors_error(path, e))?;
        Ok(TensorFile {
            path: path.to_path_buf(),
            bytes,
        })
    }

    pub fn contains(&self, name: &str) -> bool {
        SafeTensors::deserialize(&self.bytes)
            .map(|st| st.names().contains(&name))
            .unwrap_or(false)
    }

    /// Tensor `name` as f32, checked against `shape`.
    pub fn read(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let st =
            SafeTensors::deserialize(&self.bytes).map_err(|e| safetensors_error(&self.path, e))?;
        let view = st.tensor(name).map_err(|_| SaeError::MissingTensor {
            path: self.path.clone(),
            name: name.to_string(),
        })?;
        if view.shape() != shape {
            return Err(SaeError::TensorShape {
                path: self.path.clone(),
                name: name.to_string(),
                expected: shape.to_vec(),
                found: view.shape().to_vec(),
            });
        }
        let data = view.data();
        let out: Vec<f32> = match view.dtype() {
            Dtype::F32 => data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Dtype::F64 => data
                .chunks_exact(8)
                .map(|b| {
                    f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32
                })
                .collect(),
            Dtype::F16 => data
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            Dtype::BF16 => data
                .chunks_exact(2)
                .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            other => {
                return Err(SaeError::TensorDtype {
                    path: self.path.clone(),
                    name: name.to_string(),
                    dtype: format!("{other:?}"),
                })
            }
        };
        Ok(out)
    }
}
