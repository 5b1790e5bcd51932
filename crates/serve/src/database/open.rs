//! Opening a feature database and refusing one the browser cannot serve: missing, not a
//! SQLite file, damaged, locked, another format or schema version, or scanned with another
//! model than the one loaded.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags};
use saelab_interp::db::schema::{FORMAT, SCHEMA_VERSION};
use saelab_model::ModelConfig;

use crate::error::{Result, ServeError};

/// How long a reader waits for the ablation writer (or another process) to let go.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// At start a lock held this long means another process is writing the file.
const STARTUP_BUSY_TIMEOUT: Duration = Duration::from_millis(750);

pub fn read_only(path: &Path) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(conn)
}

pub fn read_write(path: &Path) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(conn)
}

/// Opens the file and runs SQLite's structural check and the format check.
pub fn check_database(path: &Path) -> Result<()> {
    if !path.is_file() {
        return Err(ServeError::database(path, "no such file"));
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| explain(path, e))?;
    conn.busy_timeout(STARTUP_BUSY_TIMEOUT)
        .map_err(|e| explain(path, e))?;
    let verdict: String = conn
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(|e| explain(path, e))?;
    if verdict != "ok" {
        return Err(ServeError::database(
            path,
            format!("is damaged (SQLite's quick_check: {verdict})"),
        ));
    }
    let meta = |key: &str| -> Result<Option<String>> {
        match conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0)) {
            Ok(v) => Ok(Some(v)),
            Err(rusqlite::Error::QueryReturnedNoRows) => Ok(None),
            Err(e) => Err(explain(path, e)),
        }
    };
    let format = meta("format")?;
    if format.as_deref() != Some(FORMAT) {
        return Err(ServeError::database(
            path,
            format!(
                "is not a saelab feature database (meta.format is {}, expected `{FORMAT}`)",
                shown(format.as_deref())
            ),
        ));
    }
    let version = meta("schema_version")?;
    if version.as_deref() != Some(SCHEMA_VERSION.to_string().as_str()) {
        return Err(ServeError::database(
            path,
            format!(
                "has schema version {}; this saelab reads schema version {SCHEMA_VERSION} \
                 (rescan the corpus with this version, or serve it with the saelab that wrote it)",
                shown(version.as_deref())
            ),
        ));
    }
    Ok(())
}

fn shown(value: Option<&str>) -> String {
    value.map_or_else(|| "missing".to_string(), |v| format!("`{v}`"))
}

/// A SQLite failure at start, in words that say what is wrong with the file.
pub fn explain(path: &Path, e: rusqlite::Error) -> ServeError {
    let message = match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            format!("is locked by another process (is a scan still writing it?): {e}")
        }
        Some(ErrorCode::NotADatabase) => format!("is not a SQLite database: {e}"),
        Some(ErrorCode::DatabaseCorrupt) => {
            format!("is damaged (truncated or partly overwritten?): {e}")
        }
        Some(ErrorCode::CannotOpen | ErrorCode::PermissionDenied) => {
            format!("cannot be opened: {e}")
        }
        _ => match e {
            rusqlite::Error::SqliteFailure(_, Some(ref m)) if m.contains("no such table") => {
                format!("is not a saelab feature database ({m})")
            }
            other => format!("cannot be read: {other}"),
        },
    };
    ServeError::database(path, message)
}

/// The model shape recorded at scan time (`meta.model_config`).
#[derive(Debug, serde::Deserialize, PartialEq, Eq)]
pub struct RecordedModel {
    pub d_model: usize,
    pub n_layers: usize,
    pub vocab_size: usize,
}

/// Refuses a model whose shape differs from the one the database was scanned with.
pub fn check_model(path: &Path, recorded_json: &str, model: &str, cfg: &ModelConfig) -> Result<()> {
    let recorded: RecordedModel = serde_json::from_str(recorded_json).map_err(|e| {
        ServeError::database(
            path,
            format!("meta.model_config is not the expected JSON object: {e}"),
        )
    })?;
    let loaded = RecordedModel {
        d_model: cfg.d_model,
        n_layers: cfg.n_layers,
        vocab_size: cfg.vocab_size,
    };
    if recorded != loaded {
        return Err(ServeError::database(
            path,
            format!(
                "was scanned with a model of d_model {}, {} layers and {} tokens, but the model \
                 `{model}` has d_model {}, {} layers and {} tokens (pass --model with the \
                 scan's model)",
                recorded.d_model,
                recorded.n_layers,
                recorded.vocab_size,
                loaded.d_model,
                loaded.n_layers,
                loaded.vocab_size
            ),
        ));
    }
    Ok(())
}
