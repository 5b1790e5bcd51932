//! Files that matter are written beside their final name and renamed into place, so a
//! reader never sees half a file and a crash leaves the old one intact.

use std::fs;
use std::io::Write;
use std::path::Path;

use crate::error::{Result, SaeError};

pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    let tmp = path.with_file_name(format!(".{name}.tmp{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        SaeError::io(path, e)
    })
}
