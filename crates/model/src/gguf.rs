//! GGUF files: header checks with clear errors, metadata access, tensors dequantised to f32.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::{DType, Device, Tensor};

use crate::error::{ModelError, Result};
use crate::panic_guard::quietly;
use crate::weights::WeightSource;

pub struct GgufFile {
    path: PathBuf,
    file: File,
    content: Content,
}

/// Names of GGML tensor types candle cannot dequantise, for error messages.
fn ggml_type_name(id: u32) -> &'static str {
    match id {
        16 => "IQ2_XXS",
        17 => "IQ2_XS",
        18 => "IQ3_XXS",
        19 => "IQ1_S",
        20 => "IQ4_NL",
        21 => "IQ3_S",
        22 => "IQ2_S",
        23 => "IQ4_XS",
        24 => "I8",
        25 => "I16",
        26 => "I32",
        27 => "I64",
        28 => "F64",
        29 => "IQ1_M",
        34 => "TQ1_0",
        35 => "TQ2_0",
        _ => "unknown",
    }
}

const SUPPORTED: &str = "F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and the K-quants";

impl GgufFile {
    pub fn open(path: &Path) -> Result<Self> {
        let mut file = File::open(path).map_err(|e| {
            ModelError::file(
                path,
                if e.kind() == std::io::ErrorKind::NotFound {
                    "no such GGUF file".to_string()
                } else {
                    format!("cannot open: {e}")
                },
            )
        })?;
        let mut magic = [0u8; 4];
        file.read_exact(&mut magic).map_err(|_| {
            ModelError::file(path, "too short to be a GGUF file (fewer than 4 bytes)")
        })?;
        if &magic != b"GGUF" {
            return Err(ModelError::file(
                path,
                format!(
                    "not a GGUF file: it starts with bytes {:02x?}, expected the magic \"GGUF\"",
                    magic
                ),
            ));
        }
        file.seek(SeekFrom::Start(0))
            .map_err(|e| ModelError::file(path, e.to_string()))?;
        let read = quietly(|| Content::read(&mut file)).ok_or_else(|| {
            ModelError::file(
                path,
                "cannot read the GGUF header: a size in it is impossible; the file is corrupt",
            )
        })?;
        let content = read.map_err(|e| {
            let msg = e.to_string();
            match msg.strip_prefix("unknown dtype for tensor ") {
                Some(id) => {
                    let digits: String = id.chars().take_while(char::is_ascii_digit).collect();
                    let id: u32 = digits.parse().unwrap_or(u32::MAX);
                    ModelError::file(
                        path,
                        format!(
                            "unsupported tensor type {} (GGML type id {id}); saelab reads {SUPPORTED}",
                            ggml_type_name(id)
                        ),
                    )
                }
                None => ModelError::file(
                    path,
                    format!("cannot read the GGUF header ({msg}); the file is truncated or corrupt"),
                ),
            }
        })?;
        let gguf = GgufFile {
            path: path.to_path_buf(),
            file,
            content,
        };
        gguf.check_tensor_bounds()?;
        Ok(gguf)
    }

    /// A truncated file still has a readable header; catch it before reading any tensor.
    /// So are tensors that would read bytes that are not theirs: an offset off the file's
    /// alignment, a shape that does not fill whole quantisation blocks, or a range running
    /// into the next tensor (a type changed to a wider one reads its neighbour's data).
    fn check_tensor_bounds(&self) -> Result<()> {
        let len = self
            .file
            .metadata()
            .map_err(|e| ModelError::file(&self.path, e.to_string()))?
            .len();
        let align = match self.metadata("general.alignment") {
            Some(Value::U32(a)) if *a > 0 => u64::from(*a),
            _ => 32,
        };
        let corrupt = |message: String| ModelError::file(&self.path, message);
        let mut ranges = Vec::with_capacity(self.content.tensor_infos.len());
        for (name, info) in &self.content.tensor_infos {
            let dtype = info.ggml_dtype;
            let elems = info.shape.elem_count();
            if !elems.is_multiple_of(dtype.block_size()) {
                return Err(corrupt(format!(
                    "tensor `{name}`: {elems} values do not fill whole {dtype:?} blocks of {}",
                    dtype.block_size()
                )));
            }
            if !info.offset.is_multiple_of(align) {
                return Err(corrupt(format!(
                    "tensor `{name}` starts at offset {}, not a multiple of the file's alignment \
                     {align}: the file is corrupt",
                    info.offset
                )));
            }
            let bytes = (elems / dtype.block_size()) as u64 * dtype.type_size() as u64;
            let start = self.content.tensor_data_offset.saturating_add(info.offset);
            let end = start.saturating_add(bytes);
            if end > len {
                return Err(corrupt(format!(
                    "truncated: tensor `{name}` ends at byte {end} but the file has {len} bytes"
                )));
            }
            ranges.push((start, end, name.as_str(), dtype));
        }
        ranges.sort_unstable_by_key(|r| r.0);
        for pair in ranges.windows(2) {
            let ((_, end, a, dtype), (start, _, b, _)) = (pair[0], pair[1]);
            if end > start {
                return Err(corrupt(format!(
                    "tensor `{a}` ({dtype:?}) runs {} bytes into tensor `{b}`: its type or \
                     shape is wrong, the file is corrupt",
                    end - start
                )));
            }
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn metadata(&self, key: &str) -> Option<&Value> {
        self.content.metadata.get(key)
    }

    fn required(&self, key: &str) -> Result<&Value> {
        self.metadata(key)
            .ok_or_else(|| ModelError::config(&self.path, key, "missing from the GGUF metadata"))
    }

    pub fn string(&self, key: &str) -> Result<String> {
        self.required(key)?
            .to_string()
            .cloned()
            .map_err(|e| ModelError::config(&self.path, key, e.to_string()))
    }

    /// An integer of any width.
    pub fn usize(&self, key: &str) -> Result<usize> {
        let v = self.required(key)?;
        let n = match v {
            Value::U8(x) => *x as u64,
            Value::U16(x) => *x as u64,
            Value::U32(x) => *x as u64,
            Value::U64(x) => *x,
            Value::I8(x) if *x >= 0 => *x as u64,
            Value::I16(x) if *x >= 0 => *x as u64,
            Value::I32(x) if *x >= 0 => *x as u64,
            Value::I64(x) if *x >= 0 => *x as u64,
            other => {
                return Err(ModelError::config(
                    &self.path,
                    key,
                    format!("expected a non-negative integer, found {other:?}"),
                ))
            }
        };
        Ok(n as usize)
    }

    pub fn f32(&self, key: &str) -> Result<f32> {
        match self.required(key)? {
            Value::F32(x) => Ok(*x),
            Value::F64(x) => Ok(*x as f32),
            other => Err(ModelError::config(
                &self.path,
                key,
                format!("expected a float, found {other:?}"),
            )),
        }
    }

    pub fn array(&self, key: &str) -> Result<&Vec<Value>> {
        self.required(key)?
            .to_vec()
            .map_err(|e| ModelError::config(&self.path, key, e.to_string()))
    }

    pub fn tensor_names(&self) -> impl Iterator<Item = &String> {
        self.content.tensor_infos.keys()
    }
}

impl WeightSource for GgufFile {
    fn origin(&self) -> &Path {
        &self.path
    }

    fn has(&self, name: &str) -> bool {
        self.content.tensor_infos.contains_key(name)
    }

    fn tensor(&mut self, name: &str) -> Result<Tensor> {
        if !self.has(name) {
            return Err(ModelError::file(
                &self.path,
                format!("tensor `{name}` is missing"),
            ));
        }
        let (content, file) = (&self.content, &mut self.file);
        let read = quietly(|| {
            content
                .tensor(file, name, &Device::Cpu)
                .and_then(|q| q.dequantize(&Device::Cpu))
        })
        .ok_or_else(|| {
            ModelError::file(&self.path, format!("tensor `{name}`: the file is corrupt"))
        })?;
        let t = read.map_err(|e| ModelError::file(&self.path, format!("tensor `{name}`: {e}")))?;
        Ok(t.to_dtype(DType::F32)?)
    }
}
