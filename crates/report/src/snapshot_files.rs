//! Reading a run's density snapshots: `snapshots/<dictionary>/step_NNNNNNNN.safetensors`, one
//! per dictionary every `snapshot_every` tokens and at the end (saelab-train writes them). Each
//! holds per latent its firing count since the previous snapshot (`counts`, int64), `b_enc`,
//! `de_projection` (in METRICS.md's units, where ≈ 1 is a latent that writes back what it
//! reads), `de_projection_raw` and `control` (1 for the control set, which is never
//! resampled; uint8), and as metadata one key, `snapshot`, holding the JSON
//! `{"step", "tokens", "interval_tokens"}`. The counts of all snapshots add up to the run's
//! total firing counts.

use safetensors::{Dtype, SafeTensors};
use std::path::{Path, PathBuf};

/// The folder of a run that holds one sub-folder of snapshots per dictionary.
pub const FOLDER: &str = "snapshots";

/// One snapshot read back.
#[derive(Clone, Debug, PartialEq)]
pub struct SnapshotFile {
    pub step: u64,
    /// Training tokens seen when it was taken.
    pub tokens: u64,
    /// Tokens since the previous snapshot: what `counts` were counted over.
    pub interval_tokens: u64,
    pub counts: Vec<i64>,
    pub b_enc: Vec<f32>,
    pub de_projection: Vec<f32>,
    pub de_projection_raw: Vec<f32>,
    pub control: Vec<bool>,
}

/// What went wrong reading snapshots; every case names the file or folder.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("reading {path}: {cause}")]
    Read {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("snapshot {path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

fn invalid(path: &Path, reason: impl std::fmt::Display) -> SnapshotError {
    SnapshotError::Invalid {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// The dictionaries with a snapshot folder in `run_dir`, by name; none when the run has no
/// snapshots.
pub fn dictionaries(run_dir: &Path) -> Result<Vec<String>, SnapshotError> {
    let dir = run_dir.join(FOLDER);
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let read = |cause| SnapshotError::Read {
        path: dir.clone(),
        cause,
    };
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).map_err(read)? {
        let path = entry.map_err(read)?.path();
        if path.is_dir() {
            if let Some(name) = path.file_name().and_then(|n| n.to_str()) {
                names.push(name.to_string());
            }
        }
    }
    names.sort();
    Ok(names)
}

/// The snapshot files of one dictionary, in step order (the names carry the step in eight
/// digits, so name order is step order).
pub fn paths(run_dir: &Path, name: &str) -> Result<Vec<PathBuf>, SnapshotError> {
    let dir = run_dir.join(FOLDER).join(name);
    let read = |cause| SnapshotError::Read {
        path: dir.clone(),
        cause,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&dir).map_err(read)? {
        let path = entry.map_err(read)?.path();
        if path.extension().is_some_and(|e| e == "safetensors") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Every snapshot of one dictionary, in step order.
pub fn read_all(run_dir: &Path, name: &str) -> Result<Vec<SnapshotFile>, SnapshotError> {
    paths(run_dir, name)?.iter().map(|p| read(p)).collect()
}

/// One snapshot file.
pub fn read(path: &Path) -> Result<SnapshotFile, SnapshotError> {
    let bytes = std::fs::read(path).map_err(|cause| SnapshotError::Read {
        path: path.to_path_buf(),
        cause,
    })?;
    let (_, header) = SafeTensors::read_metadata(&bytes).map_err(|e| invalid(path, e))?;
    let meta: serde_json::Value = header
        .metadata()
        .as_ref()
        .and_then(|m| m.get("snapshot"))
        .map(|s| serde_json::from_str(s))
        .transpose()
        .map_err(|e| invalid(path, format!("metadata `snapshot`: {e}")))?
        .unwrap_or_default();
    let field = |key: &str| meta.get(key).and_then(serde_json::Value::as_u64);
    let (Some(step), Some(tokens), Some(interval_tokens)) =
        (field("step"), field("tokens"), field("interval_tokens"))
    else {
        return Err(invalid(
            path,
            "no step, tokens and interval_tokens in its metadata",
        ));
    };
    let tensors = SafeTensors::deserialize(&bytes).map_err(|e| invalid(path, e))?;
    let tensor = |key: &str, dtype: Dtype| -> Result<&[u8], SnapshotError> {
        let t = tensors
            .tensor(key)
            .map_err(|e| invalid(path, format!("tensor `{key}`: {e}")))?;
        if t.dtype() != dtype {
            return Err(invalid(
                path,
                format!("tensor `{key}` is {:?}, expected {dtype:?}", t.dtype()),
            ));
        }
        Ok(t.data())
    };
    let f32s = |key: &str| -> Result<Vec<f32>, SnapshotError> {
        Ok(tensor(key, Dtype::F32)?
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    };
    let counts: Vec<i64> = tensor("counts", Dtype::I64)?
        .chunks_exact(8)
        .map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")))
        .collect();
    let file = SnapshotFile {
        step,
        tokens,
        interval_tokens,
        b_enc: f32s("b_enc")?,
        de_projection: f32s("de_projection")?,
        de_projection_raw: f32s("de_projection_raw")?,
        control: tensor("control", Dtype::U8)?
            .iter()
            .map(|&c| c != 0)
            .collect(),
        counts,
    };
    let n = file.counts.len();
    let lengths = [
        file.b_enc.len(),
        file.de_projection.len(),
        file.de_projection_raw.len(),
        file.control.len(),
    ];
    if lengths.iter().any(|&l| l != n) {
        return Err(invalid(
            path,
            format!(
                "tensors of different lengths (counts {n}, b_enc, de_projection, \
                 de_projection_raw, control {lengths:?})"
            ),
        ));
    }
    Ok(file)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use safetensors::tensor::TensorView;
    use std::collections::HashMap;

    /// Writes `file` as saelab-train does (its writer lives there, this is the test's copy).
    pub(crate) fn write(run_dir: &Path, name: &str, file: &SnapshotFile) -> PathBuf {
        fn le<T: Copy, const N: usize>(values: &[T], bytes: fn(T) -> [u8; N]) -> Vec<u8> {
            values.iter().flat_map(|&v| bytes(v)).collect()
        }
        let n = file.counts.len();
        let buffers = [
            ("b_enc", Dtype::F32, le(&file.b_enc, f32::to_le_bytes)),
            (
                "control",
                Dtype::U8,
                file.control.iter().map(|&c| u8::from(c)).collect(),
            ),
            ("counts", Dtype::I64, le(&file.counts, i64::to_le_bytes)),
            (
                "de_projection",
                Dtype::F32,
                le(&file.de_projection, f32::to_le_bytes),
            ),
            (
                "de_projection_raw",
                Dtype::F32,
                le(&file.de_projection_raw, f32::to_le_bytes),
            ),
        ];
        let views = buffers
            .iter()
            .map(|(key, dtype, bytes)| {
                (
                    key.to_string(),
                    TensorView::new(*dtype, vec![n], bytes).unwrap(),
                )
            })
            .collect::<Vec<_>>();
        let meta = serde_json::json!({
            "step": file.step, "tokens": file.tokens, "interval_tokens": file.interval_tokens
        });
        let metadata = HashMap::from([("snapshot".to_string(), meta.to_string())]);
        let path = run_dir
            .join(FOLDER)
            .join(name)
            .join(format!("step_{:08}.safetensors", file.step));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(
            &path,
            safetensors::serialize(views, Some(metadata)).unwrap(),
        )
        .unwrap();
        path
    }

    #[test]
    fn snapshots_read_back_in_step_order_and_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let files = crate::death::tests::synthetic(12, &crate::death::tests::LATENTS);
        // Written out of order: step 100 sorts after step 90 by its eight-digit name.
        for f in files.iter().rev() {
            write(dir.path(), "d", f);
        }
        assert_eq!(read_all(dir.path(), "d").unwrap(), files);
        assert_eq!(dictionaries(dir.path()).unwrap(), vec!["d".to_string()]);
        assert!(dictionaries(&dir.path().join("none")).unwrap().is_empty());
        let broken = dir
            .path()
            .join(FOLDER)
            .join("d")
            .join("step_00000010.safetensors");
        std::fs::write(&broken, b"not a safetensors file").unwrap();
        let err = read_all(dir.path(), "d").unwrap_err().to_string();
        assert!(err.contains("step_00000010.safetensors"), "{err}");
    }
}
