//! A run's density snapshots: `snapshots/<dictionary>/step_NNNNNNNN.safetensors`, one per
//! dictionary every `snapshot_every` tokens and at the end, each holding per latent its
//! firing count since the previous snapshot (`counts`, int64), `b_enc`, `de_projection` (in
//! METRICS.md's units), `de_projection_raw` and `control` (1 for the control set, uint8), and
//! as metadata `{"step", "tokens", "interval_tokens"}`. The counts of all snapshots add up to
//! the run's total firing counts. This module writes them; `saelab_report::snapshot_files`
//! reads them (re-exported here).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use saelab_sae::train::snapshot::Snapshot;
use safetensors::tensor::TensorView;
use safetensors::Dtype;

use crate::write_atomic;

// The reader lives in saelab-report, which draws the snapshots on the run page.
pub use saelab_report::snapshot_files::{read, read_all, SnapshotFile, FOLDER};

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
