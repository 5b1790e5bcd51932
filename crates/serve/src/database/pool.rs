//! Read-only connections kept for reuse, and the one writable connection (ablations only).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::Connection;
use saelab_interp::db::open::{connect, Access};

/// Idle connections kept beyond this many are closed.
const MAX_IDLE: usize = 8;

pub struct Pool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    writer: Mutex<Option<Connection>>,
}

impl Pool {
    pub fn new(path: &Path) -> Self {
        Pool {
            path: path.to_path_buf(),
            idle: Mutex::new(Vec::new()),
            writer: Mutex::new(None),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on an idle read-only connection (opening one if none is idle).
    pub fn read<T, E: From<rusqlite::Error>>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, E>,
    ) -> Result<T, E> {
        let taken = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let conn = match taken {
            Some(c) => c,
            None => connect(&self.path, Access::ReadOnly)?,
        };
        let out = f(&conn);
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < MAX_IDLE {
                idle.push(conn);
            }
        }
        out
    }

    /// Runs `f` on the writable connection, opened on first use.
    pub fn write<T, E: From<rusqlite::Error>>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut guard = match self.writer.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let conn = match guard.take() {
            Some(c) => c,
            None => connect(&self.path, Access::ReadWrite)?,
        };
        let out = f(&conn);
        *guard = Some(conn);
        out
    }
}
