//! An export's output folder: created if missing, refused if it holds anything the export
//! would not write itself (so a mistyped path never mixes an export into someone's files),
//! filled file by file through a temporary name and a rename, and cleared of the previous
//! export's files that this one did not rewrite.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use saelab_sae::format::atomic::write_atomic;

use crate::error::{InterpError, Result};

pub struct OutputFolder {
    dir: PathBuf,
    owned: fn(&str) -> bool,
    written: BTreeSet<String>,
}

impl OutputFolder {
    /// `owned` says which names an export of this kind writes; a leftover temporary file
    /// of one (from a killed run) is owned too.
    pub fn prepare(dir: &Path, owned: fn(&str) -> bool) -> Result<Self> {
        if dir.exists() && !dir.is_dir() {
            return Err(InterpError::export(dir, "exists and is not a folder"));
        }
        std::fs::create_dir_all(dir)
            .map_err(|e| InterpError::export(dir, format!("cannot create it: {e}")))?;
        let mut foreign = Vec::new();
        for name in names(dir)? {
            if !(owned(&name) || is_temporary_of(&name, owned)) {
                foreign.push(name);
            }
        }
        if let Some(first) = foreign.first() {
            return Err(InterpError::export(
                dir,
                format!(
                    "holds {} file(s) this export does not write (first: `{first}`); choose an \
                     empty or new folder",
                    foreign.len()
                ),
            ));
        }
        Ok(OutputFolder {
            dir: dir.to_path_buf(),
            owned,
            written: BTreeSet::new(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    pub fn write(&mut self, name: &str, bytes: &[u8]) -> Result<()> {
        debug_assert!((self.owned)(name), "{name} is not a name this export owns");
        write_atomic(&self.dir.join(name), bytes)?;
        self.written.insert(name.to_string());
        Ok(())
    }

    /// Removes owned files this export did not write (a previous export's extra batches,
    /// a killed run's temporary files), so the folder holds exactly this export.
    pub fn finish(self) -> Result<()> {
        for name in names(&self.dir)? {
            if !self.written.contains(&name) {
                let path = self.dir.join(&name);
                std::fs::remove_file(&path)
                    .map_err(|e| InterpError::export(&path, format!("cannot remove it: {e}")))?;
            }
        }
        Ok(())
    }
}

fn names(dir: &Path) -> Result<Vec<String>> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| InterpError::export(dir, format!("cannot list it: {e}")))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| InterpError::export(dir, format!("cannot list it: {e}")))?;
        let is_file = entry.file_type().map(|t| t.is_file()).unwrap_or(false);
        let name = entry.file_name().to_string_lossy().into_owned();
        // A folder is never written by an export: name it, so it counts as foreign.
        names.push(if is_file { name } else { format!("{name}/") });
    }
    names.sort();
    Ok(names)
}

/// `.NAME.tmpPID`, the temporary name `write_atomic` gives an owned file.
fn is_temporary_of(name: &str, owned: fn(&str) -> bool) -> bool {
    let Some(rest) = name.strip_prefix('.') else {
        return false;
    };
    match rest.rfind(".tmp") {
        Some(at) => {
            let pid = &rest[at + 4..];
            !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()) && owned(&rest[..at])
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(name: &str) -> bool {
        name.starts_with("batch-") && name.ends_with(".json")
    }

    #[test]
    fn refuses_foreign_files_and_folders_and_clears_stale_ones() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        std::fs::write(out.join("batch-0.json"), "old").unwrap();
        std::fs::write(out.join("batch-7.json"), "stale").unwrap();
        std::fs::write(out.join(".batch-1.json.tmp123"), "killed").unwrap();
        let mut folder = OutputFolder::prepare(&out, batch).unwrap();
        folder.write("batch-0.json", b"new").unwrap();
        folder.finish().unwrap();
        assert_eq!(names(&out).unwrap(), ["batch-0.json"]);
        assert_eq!(
            std::fs::read_to_string(out.join("batch-0.json")).unwrap(),
            "new"
        );

        std::fs::write(out.join("notes.txt"), "mine").unwrap();
        let e = OutputFolder::prepare(&out, batch)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("notes.txt") && e.contains("out"), "{e}");
        std::fs::remove_file(out.join("notes.txt")).unwrap();
        std::fs::create_dir(out.join("batch-9.json")).unwrap();
        assert!(OutputFolder::prepare(&out, batch).is_err());

        let file = dir.path().join("file");
        std::fs::write(&file, "").unwrap();
        assert!(OutputFolder::prepare(&file, batch).is_err());
        assert!(!is_temporary_of(".batch-1.json.tmp", batch));
        assert!(!is_temporary_of(".notes.txt.tmp1", batch));
    }
}
