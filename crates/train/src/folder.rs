//! Guards for the folders a verb writes into: one writer at a time, and no writing into a
//! folder that holds something else.

use std::fs::{File, TryLockError};
use std::path::Path;

use anyhow::{bail, Context, Result};

/// An exclusive lock on a folder, held until dropped (or the process ends, however it ends:
/// the kernel releases it with the descriptor). The folder itself is locked, so that no
/// lock file is left behind or mistaken for the folder's content.
pub struct FolderLock {
    _dir: File,
}

/// Creates the output folder `dir` (and its parents); a file in its place is named as such
/// rather than reported as "File exists".
pub fn create(dir: &Path, flag: &str) -> Result<()> {
    if dir.exists() && !dir.is_dir() {
        bail!(
            "{flag} {} is a file; give a folder (it is created if missing)",
            dir.display()
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("{flag} {}", dir.display()))
}

/// Locks `dir` (which must exist) for this process, or refuses: `flag` names the option
/// that chose the folder.
pub fn lock(dir: &Path, flag: &str) -> Result<FolderLock> {
    let file = File::open(dir).with_context(|| format!("{flag} {}", dir.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(FolderLock { _dir: file }),
        Err(TryLockError::WouldBlock) => bail!(
            "{flag} {} is in use by another saelab process; wait for it to end, or choose \
             another folder",
            dir.display()
        ),
        Err(TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("{flag} {}: locking", dir.display()))
        }
    }
}

/// Refuses a folder holding an entry whose name `ours` does not accept: the folder is in use
/// for something else, and writing into it could replace that.
pub fn refuse_foreign(
    dir: &Path,
    flag: &str,
    what: &str,
    ours: impl Fn(&str) -> bool,
) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("{flag} {}", dir.display())),
    };
    for entry in entries {
        let name = entry
            .with_context(|| format!("{flag} {}", dir.display()))?
            .file_name();
        let name = name.to_string_lossy();
        if !ours(&name) {
            bail!(
                "{flag} {} holds {name}, which saelab did not write: refusing to write {what} \
                 into a folder used for something else; choose an empty or new folder",
                dir.display()
            );
        }
    }
    Ok(())
}
