//! Opening a feature database with its format and version checked, and errors that name
//! the file: missing, not a database, damaged, locked, or from another saelab.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::schema::{FORMAT, SCHEMA_VERSION};
use crate::error::{InterpError, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    ReadOnly,
    /// Pages may add rows (ablations computed on demand).
    ReadWrite,
}

/// What `meta` says about the database.
#[derive(Clone, Debug, PartialEq)]
pub struct DatabaseInfo {
    pub model: String,
    /// JSON object: d_model, n_layers, vocab_size.
    pub model_config: serde_json::Value,
}

/// How long a reader waits for a writer's lock before saying the file is locked.
const BUSY_TIMEOUT: Duration = Duration::from_secs(2);

pub fn open(path: &Path, access: Access) -> Result<(Connection, DatabaseInfo)> {
    if !path.is_file() {
        return Err(InterpError::database(path, "no such file"));
    }
    let flags = match access {
        Access::ReadOnly => OpenFlags::SQLITE_OPEN_READ_ONLY,
        Access::ReadWrite => OpenFlags::SQLITE_OPEN_READ_WRITE,
    } | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| sqlite(path, e))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| sqlite(path, e))?;
    let info = check(&conn, path)?;
    Ok((conn, info))
}

/// Checks the format and version, and that SQLite finds the file whole.
fn check(conn: &Connection, path: &Path) -> Result<DatabaseInfo> {
    let meta = |key: &str| -> Result<Option<String>> {
        let mut stmt = conn
            .prepare_cached("SELECT value FROM meta WHERE key = ?1")
            .map_err(|e| sqlite(path, e))?;
        let mut rows = stmt.query([key]).map_err(|e| sqlite(path, e))?;
        match rows.next().map_err(|e| sqlite(path, e))? {
            Some(row) => Ok(Some(row.get(0).map_err(|e| sqlite(path, e))?)),
            None => Ok(None),
        }
    };
    let format = meta("format")?;
    if format.as_deref() != Some(FORMAT) {
        return Err(InterpError::database(
            path,
            format!(
                "not a saelab feature database (meta.format is {:?}, expected {FORMAT:?})",
                format.unwrap_or_default()
            ),
        ));
    }
    let version = meta("schema_version")?.unwrap_or_default();
    if version != SCHEMA_VERSION.to_string() {
        return Err(InterpError::database(
            path,
            format!(
                "schema version {version:?}, but this saelab reads version {SCHEMA_VERSION}: \
                 rebuild it with this saelab's `saelab features`"
            ),
        ));
    }
    let status: String = conn
        .query_row("PRAGMA quick_check(1)", [], |r| r.get(0))
        .map_err(|e| sqlite(path, e))?;
    if status != "ok" {
        return Err(InterpError::database(path, format!("damaged: {status}")));
    }
    let model = meta("model")?.unwrap_or_default();
    let config = meta("model_config")?.unwrap_or_default();
    let model_config = serde_json::from_str(&config)
        .map_err(|e| InterpError::database(path, format!("meta.model_config is not JSON: {e}")))?;
    Ok(DatabaseInfo {
        model,
        model_config,
    })
}

/// SQLite's error, said in words a user can act on.
pub(crate) fn sqlite(path: &Path, e: rusqlite::Error) -> InterpError {
    use rusqlite::ErrorCode;
    let message = match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => "not an SQLite database (or truncated or damaged)".into(),
        Some(ErrorCode::DatabaseCorrupt) => {
            "damaged (SQLite: database disk image is malformed)".into()
        }
        Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked) => {
            "locked by another process (another saelab writing it?)".into()
        }
        Some(ErrorCode::ReadOnly) => "read-only: cannot store new rows".into(),
        _ => format!("SQLite: {e}"),
    };
    InterpError::database(path, message)
}
