//! The run folder's config, checkpoints and metrics log: checkpoints written whole or not at
//! all, pruned to the last few, and the log cut back to the checkpoint a resume starts from.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use saelab_sae::train::set::TrainerSet;
use serde::de::DeserializeOwned;

/// The run's settings and dictionaries, as written at its start.
pub const CONFIG: &str = "config.json";

/// The `config.json` of run folder `out`, for `--resume`.
pub fn read_config<T: DeserializeOwned>(out: &Path) -> Result<T> {
    let path = out.join(CONFIG);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("--resume: {} (is --out a run folder?)", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}", path.display()))
}

/// A checkpoint folder holding a file of this name is never pruned.
pub const KEEP_MARK: &str = "keep";

/// Writes `dir/step_N` beside as a hidden partial folder and renames it into place.
pub fn save_checkpoint(set: &TrainerSet, dir: &Path, step: u64) -> Result<()> {
    write_checkpoint(dir, step, |tmp| Ok(set.save_checkpoint(tmp)?))
}

/// `dir/step_N` filled by `write` in a hidden partial folder, then renamed into place.
pub fn write_checkpoint(
    dir: &Path,
    step: u64,
    write: impl FnOnce(&Path) -> Result<()>,
) -> Result<()> {
    let target = dir.join(format!("step_{step}"));
    let tmp = dir.join(format!(".step_{step}.partial"));
    let _ = std::fs::remove_dir_all(&tmp);
    write(&tmp)?;
    let _ = std::fs::remove_dir_all(&target);
    std::fs::rename(&tmp, &target).with_context(|| format!("{}", target.display()))?;
    Ok(())
}

/// Every `step_N` under `dir`, oldest first (partial checkpoints are hidden names and never
/// match).
fn checkpoints(dir: &Path) -> Vec<(u64, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<(u64, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let step = name.strip_prefix("step_")?.parse::<u64>().ok()?;
            Some((step, e.path()))
        })
        .collect();
    found.sort();
    found
}

/// The highest `step_N` under `dir`.
pub fn latest_checkpoint(dir: &Path) -> Option<(u64, PathBuf)> {
    checkpoints(dir).pop()
}

/// Removes all but the newest `keep` checkpoints, sparing any folder the user marked with a
/// `keep` file (a run with frequent checkpoints otherwise fills the disk: one checkpoint holds
/// each dictionary's weights three times over, with Adam's moments).
pub fn prune_checkpoints(dir: &Path, keep: u64) -> Result<()> {
    let all = checkpoints(dir);
    let old = all.len().saturating_sub(keep as usize);
    for (_, path) in &all[..old] {
        if !path.join(KEEP_MARK).exists() {
            std::fs::remove_dir_all(path)
                .with_context(|| format!("pruning the old checkpoint {}", path.display()))?;
        }
    }
    Ok(())
}

/// Cuts `metrics.jsonl` back to the lines of the first `steps` steps, so that a resumed run
/// appends after its checkpoint rather than repeating the steps a killed run logged past it.
/// A torn last line (the kill came mid-write) goes too. Replaced atomically.
pub fn trim_metrics(path: &Path, steps: u64) -> Result<()> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("{}", path.display())),
    };
    let mut kept = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        if !line.ends_with('\n') {
            break; // torn
        }
        let Ok(value) = serde_json::from_str::<serde_json::Value>(line) else {
            break;
        };
        // `step` is the 0-based index of the step the line reports.
        match value["step"].as_u64() {
            Some(step) if step < steps => kept.push_str(line),
            _ => break,
        }
    }
    crate::write_atomic(path, kept.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pruning_keeps_the_newest_and_the_marked() {
        let dir = tempfile::tempdir().unwrap();
        for step in [10, 20, 30, 40, 50] {
            std::fs::create_dir_all(dir.path().join(format!("step_{step}/d"))).unwrap();
        }
        std::fs::create_dir_all(dir.path().join(".step_60.partial")).unwrap();
        std::fs::write(dir.path().join("step_20").join(KEEP_MARK), b"").unwrap();
        prune_checkpoints(dir.path(), 2).unwrap();
        let left: Vec<u64> = checkpoints(dir.path()).iter().map(|c| c.0).collect();
        assert_eq!(left, [20, 40, 50]);
        assert_eq!(latest_checkpoint(dir.path()).unwrap().0, 50);
        prune_checkpoints(dir.path(), 1).unwrap();
        let left: Vec<u64> = checkpoints(dir.path()).iter().map(|c| c.0).collect();
        assert_eq!(left, [20, 50]);
    }

    #[test]
    fn metrics_are_cut_back_to_the_checkpoint_and_a_torn_line_goes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.jsonl");
        let line = |step: u64| format!("{{\"name\":\"a\",\"step\":{step}}}\n");
        let mut text: String = [9, 19, 29, 39].iter().map(|&s| line(s)).collect();
        text.push_str("{\"name\":\"a\",\"st");
        std::fs::write(&path, &text).unwrap();
        trim_metrics(&path, 30).unwrap();
        let expected: String = [9, 19, 29].iter().map(|&s| line(s)).collect();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), expected);
        std::fs::write(&path, "{\"name\":\"a\",\"st").unwrap();
        trim_metrics(&path, 30).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
        trim_metrics(&dir.path().join("absent.jsonl"), 30).unwrap();
    }
}
