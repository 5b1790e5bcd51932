//! One cache shard: a safetensors file holding a run of windows, with `ids` (u32), `mask`
//! and `special` (u8) of shape `[windows, ctx]` and one `[windows, ctx, d]` tensor per hook,
//! named by the hook, in the cache's dtype. Any safetensors reader can open it.

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

use super::dtype::CacheDtype;
use crate::activations::{ActivationWindow, Layout};
use crate::error::{DataError, Result};

pub fn shard_file_name(index: usize) -> String {
    format!("shard_{index:05}.safetensors")
}

/// Windows collected for one shard, already in their on-disk encoding.
pub struct ShardBuilder {
    layout: Layout,
    dtype: CacheDtype,
    pub first_window: u64,
    pub windows: usize,
    /// Real, non-special positions.
    pub tokens: u64,
    ids: Vec<u8>,
    mask: Vec<u8>,
    special: Vec<u8>,
    hooks: Vec<Vec<u8>>,
}

impl ShardBuilder {
    pub fn new(layout: &Layout, dtype: CacheDtype, first_window: u64) -> Self {
        ShardBuilder {
            layout: layout.clone(),
            dtype,
            first_window,
            windows: 0,
            tokens: 0,
            ids: Vec::new(),
            mask: Vec::new(),
            special: Vec::new(),
            hooks: vec![Vec::new(); layout.hooks.len()],
        }
    }

    pub fn push(&mut self, w: &ActivationWindow) {
        for id in &w.ids {
            self.ids.extend_from_slice(&id.to_le_bytes());
        }
        self.mask.extend_from_slice(&w.mask);
        self.special.extend(w.special.iter().map(|&s| u8::from(s)));
        for (out, values) in self.hooks.iter_mut().zip(&w.hooks) {
            self.dtype.encode(values, out);
        }
        self.tokens += w.counted().count() as u64;
        self.windows += 1;
    }

    /// The safetensors bytes of the shard.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let (w, t) = (self.windows, self.layout.ctx);
        let mut tensors = vec![
            ("ids".to_string(), view(Dtype::U32, vec![w, t], &self.ids)?),
            ("mask".to_string(), view(Dtype::U8, vec![w, t], &self.mask)?),
            (
                "special".to_string(),
                view(Dtype::U8, vec![w, t], &self.special)?,
            ),
        ];
        for (hook, data) in self.layout.hooks.iter().zip(&self.hooks) {
            tensors.push((
                hook.name.clone(),
                view(self.dtype.safetensors(), vec![w, t, hook.d], data)?,
            ));
        }
        // One key only: safetensors writes a map's keys in hash order, which would make
        // two harvests of the same windows differ in their bytes.
        let metadata = HashMap::from([("first_window".to_string(), self.first_window.to_string())]);
        safetensors::serialize(tensors, Some(metadata))
            .map_err(|e| DataError::invalid("shard", format!("serializing: {e}")))
    }
}

fn view(dtype: Dtype, shape: Vec<usize>, data: &[u8]) -> Result<TensorView<'_>> {
    TensorView::new(dtype, shape, data)
        .map_err(|e| DataError::invalid("shard", format!("building a tensor: {e}")))
}

/// A shard read back: checked against the layout, decoded window by window on demand.
pub struct ShardReader<'a> {
    tensors: SafeTensors<'a>,
    layout: &'a Layout,
    dtype: CacheDtype,
    first_window: u64,
    windows: usize,
}

impl<'a> ShardReader<'a> {
    /// Parses `bytes` (the file at `path`) and checks every tensor's dtype and shape.
    pub fn new(
        path: &Path,
        bytes: &'a [u8],
        layout: &'a Layout,
        dtype: CacheDtype,
        first_window: u64,
        windows: usize,
    ) -> Result<Self> {
        let tensors = SafeTensors::deserialize(bytes)
            .map_err(|e| DataError::cache(path, format!("not a readable safetensors file: {e}")))?;
        let t = layout.ctx;
        let mut expected = vec![
            ("ids", Dtype::U32, vec![windows, t]),
            ("mask", Dtype::U8, vec![windows, t]),
            ("special", Dtype::U8, vec![windows, t]),
        ];
        for hook in &layout.hooks {
            expected.push((&hook.name, dtype.safetensors(), vec![windows, t, hook.d]));
        }
        for (name, want_dtype, want_shape) in expected {
            let tensor = tensors
                .tensor(name)
                .map_err(|_| DataError::cache(path, format!("tensor `{name}` is missing")))?;
            if tensor.dtype() != want_dtype || tensor.shape() != want_shape.as_slice() {
                return Err(DataError::cache(
                    path,
                    format!(
                        "tensor `{name}` is {:?} {:?}, expected {want_dtype:?} {want_shape:?}",
                        tensor.dtype(),
                        tensor.shape()
                    ),
                ));
            }
        }
        Ok(ShardReader {
            tensors,
            layout,
            dtype,
            first_window,
            windows,
        })
    }

    pub fn windows(&self) -> usize {
        self.windows
    }

    /// Windows `range` of the shard, decoded to f32.
    pub fn read(&self, range: std::ops::Range<usize>) -> Vec<ActivationWindow> {
        let t = self.layout.ctx;
        let data = |name: &str| self.tensors.tensor(name).map(|v| v.data()).unwrap_or(&[]);
        let (ids, mask, special) = (data("ids"), data("mask"), data("special"));
        let hooks: Vec<&[u8]> = self.layout.hooks.iter().map(|h| data(&h.name)).collect();
        range
            .map(|i| {
                let span = i * t..(i + 1) * t;
                ActivationWindow {
                    index: self.first_window + i as u64,
                    ids: ids[i * t * 4..(i + 1) * t * 4]
                        .chunks_exact(4)
                        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                        .collect(),
                    mask: mask[span.clone()].to_vec(),
                    special: special[span].iter().map(|&s| s != 0).collect(),
                    hooks: self
                        .layout
                        .hooks
                        .iter()
                        .zip(&hooks)
                        .map(|(hook, bytes)| {
                            let n = t * hook.d * self.dtype.bytes();
                            let mut out = Vec::with_capacity(t * hook.d);
                            self.dtype.decode(&bytes[i * n..(i + 1) * n], &mut out);
                            out
                        })
                        .collect(),
                }
            })
            .collect()
    }
}
