//! Where a model's tensors come from: a GGUF file or a folder of safetensors files.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::safetensors::MmapedSafetensors;
use candle_core::{DType, Device, Tensor};

use crate::error::{ModelError, Result};

/// A named store of tensors, returned as f32 on the CPU.
pub trait WeightSource {
    /// The file or folder the tensors come from, for error messages.
    fn origin(&self) -> &Path;
    fn has(&self, name: &str) -> bool;
    fn tensor(&mut self, name: &str) -> Result<Tensor>;

    /// The tensor, checked to have `shape`.
    fn tensor_shaped(&mut self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let t = self.tensor(name)?;
        if t.dims() != shape {
            return Err(ModelError::file(
                self.origin(),
                format!(
                    "tensor `{name}` has shape {:?}, expected {:?}",
                    t.dims(),
                    shape
                ),
            ));
        }
        Ok(t)
    }
}

/// The `*.safetensors` files of a Hugging Face model folder.
pub struct SafetensorsDir {
    dir: PathBuf,
    files: MmapedSafetensors,
    names: HashMap<String, ()>,
}

impl SafetensorsDir {
    pub fn open(dir: &Path) -> Result<Self> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| ModelError::file(dir, format!("cannot list the folder: {e}")))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|ext| ext == "safetensors"))
            .collect();
        paths.sort();
        if paths.is_empty() {
            return Err(ModelError::file(
                dir,
                "no *.safetensors weight files in this folder",
            ));
        }
        for p in &paths {
            check_header(p)?;
        }
        // SAFETY: the files are memory-mapped read-only; saelab never writes to a model's weights.
        let files = unsafe { MmapedSafetensors::multi(&paths) }
            .map_err(|e| ModelError::file(dir, format!("cannot map the safetensors files: {e}")))?;
        let names = files
            .tensors()
            .into_iter()
            .map(|(name, _)| (name, ()))
            .collect();
        Ok(SafetensorsDir {
            dir: dir.to_path_buf(),
            files,
            names,
        })
    }
}

impl WeightSource for SafetensorsDir {
    fn origin(&self) -> &Path {
        &self.dir
    }

    fn has(&self, name: &str) -> bool {
        self.names.contains_key(name)
    }

    fn tensor(&mut self, name: &str) -> Result<Tensor> {
        if !self.has(name) {
            return Err(ModelError::file(
                &self.dir,
                format!("tensor `{name}` is missing from the safetensors files"),
            ));
        }
        let t = self
            .files
            .load(name, &Device::Cpu)
            .map_err(|e| ModelError::file(&self.dir, format!("tensor `{name}`: {e}")))?;
        // An integer tensor would convert to floats without complaint and give garbage.
        if !matches!(
            t.dtype(),
            DType::F32 | DType::F16 | DType::BF16 | DType::F64
        ) {
            return Err(ModelError::file(
                &self.dir,
                format!(
                    "tensor `{name}` holds {:?} values; model weights must be floating point",
                    t.dtype()
                ),
            ));
        }
        Ok(t.to_dtype(DType::F32)?)
    }
}

/// Reads a safetensors header so a corrupt file is named, not hidden in a multi-file error.
fn check_header(path: &Path) -> Result<()> {
    use std::io::Read;
    let bad = |msg: String| ModelError::file(path, format!("not a valid safetensors file: {msg}"));
    let mut file = std::fs::File::open(path).map_err(|e| ModelError::file(path, e.to_string()))?;
    let file_len = file
        .metadata()
        .map_err(|e| ModelError::file(path, e.to_string()))?
        .len();
    let mut len = [0u8; 8];
    file.read_exact(&mut len)
        .map_err(|_| bad("shorter than its 8-byte header length".into()))?;
    let len = u64::from_le_bytes(len);
    if len > file_len.saturating_sub(8) || len > 100_000_000 {
        return Err(bad(format!(
            "header length {len} does not fit in a file of {file_len} bytes"
        )));
    }
    let mut header = vec![0u8; len as usize];
    file.read_exact(&mut header)
        .map_err(|e| bad(e.to_string()))?;
    serde_json::from_slice::<serde_json::Value>(&header)
        .map_err(|e| bad(format!("header is not JSON: {e}")))?;
    Ok(())
}
