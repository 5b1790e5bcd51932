//! Listing the files of a folder: recursive, sorted, hidden entries left out.

use std::path::{Path, PathBuf};

use crate::error::{DataError, Result};

/// Every file under `dir` (following the tree, not symlinked folders), sorted by path so the
/// order is the same on every machine. Names starting with `.` are skipped.
pub fn list_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| DataError::io(&d, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| DataError::io(&d, e))?;
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let path = entry.path();
            let kind = entry.file_type().map_err(|e| DataError::io(&path, e))?;
            if kind.is_dir() {
                stack.push(path);
            } else if path.is_file() {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The files under `dir` whose names end with one of `extensions` (e.g. `.parquet`).
pub fn list_with_extension(dir: &Path, extensions: &[&str]) -> Result<Vec<PathBuf>> {
    Ok(list_files(dir)?
        .into_iter()
        .filter(|p| has_extension(p, extensions))
        .collect())
}

pub fn has_extension(path: &Path, extensions: &[&str]) -> bool {
    let name = path.file_name().map(|n| n.to_string_lossy().to_lowercase());
    name.is_some_and(|n| extensions.iter().any(|e| n.ends_with(e)))
}
