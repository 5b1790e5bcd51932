//! A run's density snapshots: `snapshots/<dictionary>/step_NNNNNNNN.safetensors`, one per
//! dictionary every `snapshot_every` tokens and at the end, each holding per latent its
//! firing count since the previous snapshot (`counts`, int64), `b_enc`, `de_projection` (in
//! METRICS.md's units), `de_projection_raw` and `control` (1 for the control set, uint8), and
//! as metadata `{"step", "tokens", "interval_tokens"}`. The counts of all snapshots add up to
//! the run's total firing counts.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use saelab_sae::train::snapshot::Snapshot;
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

use crate::write_atomic;

pub const FOLDER: &str = "snapshots";

/// One snapshot read back.
#[derive(Clone, Debug, PartialEq)]
pub struct SnapshotFile {
    pub step: u64,
    /// Training tokens seen when it was taken.
    pub tokens: u64,
    pub interval_tokens: u64,
    pub counts: Vec<i64>,
    pub b_enc: Vec<f32>,
    pub de_projection: Vec<f32>,
    pub de_projection_raw: Vec<f32>,
    pub control: Vec<bool>,
}

pub fn path(out: &Path, name: &str, step: u64) -> PathBuf {
    out.join(FOLDER)
        .join(name)
        .join(format!("step_{step:08}.safetensors"))
}

fn le<T: Copy, const N: usize>(values: &[T], bytes: fn(T) -> [u8; N]) -> Vec<u8> {
    values.iter().flat_map(|&v| bytes(v)).collect()
}

/// Writes one dictionary's snapshot (atomically; a rerun after a resume writes the same bytes).
pub fn write(out: &Path, name: &str, snapshot: &Snapshot, batch: usize) -> Result<()> {
    let n = snapshot.b_enc.len();
    let counts: Vec<i64> = snapshot.interval.counts.iter().map(|&c| c as i64).collect();
    let control: Vec<u8> = snapshot.control.iter().map(|&c| u8::from(c)).collect();
    let buffers = [
        ("b_enc", Dtype::F32, le(&snapshot.b_enc, f32::to_le_bytes)),
        ("control", Dtype::U8, control),
        ("counts", Dtype::I64, le(&counts, i64::to_le_bytes)),
        (
            "de_projection",
            Dtype::F32,
            le(&snapshot.de_projection, f32::to_le_bytes),
        ),
        (
            "de_projection_raw",
            Dtype::F32,
            le(&snapshot.de_projection_raw, f32::to_le_bytes),
        ),
    ];
    let views = buffers
        .iter()
        .map(|(key, dtype, bytes)| Ok((key.to_string(), TensorView::new(*dtype, vec![n], bytes)?)))
        .collect::<std::result::Result<Vec<_>, safetensors::SafeTensorError>>()?;
    // One metadata key: safetensors writes a map in hash order, and the bytes must not vary.
    let meta = serde_json::json!({
        "step": snapshot.step,
        "tokens": snapshot.step * batch as u64,
        "interval_tokens": snapshot.interval.tokens,
    });
    let metadata = HashMap::from([("snapshot".to_string(), meta.to_string())]);
    let bytes = safetensors::serialize(views, Some(metadata))?;
    let file = path(out, name, snapshot.step);
    std::fs::create_dir_all(file.parent().unwrap_or(out))
        .with_context(|| format!("creating {}", file.display()))?;
    write_atomic(&file, &bytes)
}

/// Every snapshot of one dictionary, in step order.
pub fn read_all(out: &Path, name: &str) -> Result<Vec<SnapshotFile>> {
    let dir = out.join(FOLDER).join(name);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("{}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .collect();
    files.sort();
    files.iter().map(|p| read(p)).collect()
}

pub fn read(path: &Path) -> Result<SnapshotFile> {
    let bytes = std::fs::read(path).with_context(|| format!("{}", path.display()))?;
    let context = || format!("snapshot {}", path.display());
    let (_, header) = SafeTensors::read_metadata(&bytes).with_context(context)?;
    let meta: serde_json::Value = header
        .metadata()
        .as_ref()
        .and_then(|m| m.get("snapshot"))
        .map(|s| serde_json::from_str(s))
        .transpose()
        .with_context(context)?
        .unwrap_or_default();
    let field = |key: &str| meta.get(key).and_then(serde_json::Value::as_u64);
    let (Some(step), Some(tokens), Some(interval_tokens)) =
        (field("step"), field("tokens"), field("interval_tokens"))
    else {
        bail!(
            "{}: no step, tokens and interval_tokens in its metadata",
            context()
        );
    };
    let tensors = SafeTensors::deserialize(&bytes).with_context(context)?;
    let tensor = |key: &str, dtype: Dtype| -> Result<Vec<u8>> {
        let t = tensors
            .tensor(key)
            .with_context(|| format!("{}: tensor `{key}`", context()))?;
        if t.dtype() != dtype {
            bail!(
                "{}: tensor `{key}` is {:?}, expected {dtype:?}",
                context(),
                t.dtype()
            );
        }
        Ok(t.data().to_vec())
    };
    let f32s = |key: &str| -> Result<Vec<f32>> {
        Ok(tensor(key, Dtype::F32)?
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    };
    let counts = tensor("counts", Dtype::I64)?
        .chunks_exact(8)
        .map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")))
        .collect();
    Ok(SnapshotFile {
        step,
        tokens,
        interval_tokens,
        counts,
        b_enc: f32s("b_enc")?,
        de_projection: f32s("de_projection")?,
        de_projection_raw: f32s("de_projection_raw")?,
        control: tensor("control", Dtype::U8)?
            .iter()
            .map(|&c| c != 0)
            .collect(),
    })
}
