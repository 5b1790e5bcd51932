//! Opening a feature database with its format and version checked, and errors that name
//! the file: missing, not a SQLite file, damaged, locked, a foreign SQLite file, another
//! format or schema version, or scanned with a model of another shape.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags};
use saelab_model::ModelConfig;

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
    /// The `--model` spec the scan used (empty: the default model).
    pub model: String,
    pub model_shape: ModelShape,
}

/// The model shape recorded at scan time (`meta.model_config`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
pub struct ModelShape {
    pub d_model: usize,
    pub n_layers: usize,
    pub vocab_size: usize,
}

/// How long a connection waits for another one's lock (the browser's ablation writer, a
/// second reader's transaction) before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// While opening, a lock held this long means another process is writing the file.
const OPEN_BUSY_TIMEOUT: Duration = Duration::from_millis(750);

/// Opens the file and checks that SQLite finds it whole and that it is a feature
/// database of this schema version. The connection waits up to `BUSY_TIMEOUT` for locks.
pub fn open(path: &Path, access: Access) -> Result<(Connection, DatabaseInfo)> {
    if path.is_dir() {
        return Err(InterpError::database(
            path,
            "is a folder, not a database file",
        ));
    }
    if !path.is_file() {
        return Err(InterpError::database(path, "no such file"));
    }
    let conn = Connection::open_with_flags(path, flags(access)).map_err(|e| explain(path, e))?;
    conn.busy_timeout(OPEN_BUSY_TIMEOUT)
        .map_err(|e| explain(path, e))?;
    let info = check(&conn, path)?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| explain(path, e))?;
    Ok((conn, info))
}

/// A further connection to a database that `open` has checked (a pool's next reader).
pub fn connect(path: &Path, access: Access) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(path, flags(access))?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(conn)
}

fn flags(access: Access) -> OpenFlags {
    let mode = match access {
        Access::ReadOnly => OpenFlags::SQLITE_OPEN_READ_ONLY,
        Access::ReadWrite => OpenFlags::SQLITE_OPEN_READ_WRITE,
    };
    mode | OpenFlags::SQLITE_OPEN_NO_MUTEX
}

/// SQLite's structural check first (a damaged file's `meta` cannot be trusted), then the
/// format, the version and the recorded model shape.
fn check(conn: &Connection, path: &Path) -> Result<DatabaseInfo> {
    let verdict: String = conn
        .query_row("PRAGMA quick_check(1)", [], |r| r.get(0))
        .map_err(|e| explain(path, e))?;
    if verdict != "ok" {
        return Err(InterpError::database(
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
        return Err(InterpError::database(
            path,
            format!(
                "is not a saelab feature database (meta.format is {}, expected `{FORMAT}`)",
                shown(format.as_deref())
            ),
        ));
    }
    let version = meta("schema_version")?;
    if version.as_deref() != Some(SCHEMA_VERSION.to_string().as_str()) {
        return Err(InterpError::database(
            path,
            format!(
                "has schema version {}; this saelab reads schema version {SCHEMA_VERSION} \
                 (rebuild it with this saelab's `saelab features`, or use the saelab that \
                 wrote it)",
                shown(version.as_deref())
            ),
        ));
    }
    let config = meta("model_config")?.unwrap_or_default();
    let model_shape = serde_json::from_str(&config).map_err(|e| {
        InterpError::database(
            path,
            format!("meta.model_config is not the expected JSON object: {e}"),
        )
    })?;
    Ok(DatabaseInfo {
        model: meta("model")?.unwrap_or_default(),
        model_shape,
    })
}

fn shown(value: Option<&str>) -> String {
    value.map_or_else(|| "missing".to_string(), |v| format!("`{v}`"))
}

impl ModelShape {
    pub fn of(cfg: &ModelConfig) -> Self {
        ModelShape {
            d_model: cfg.d_model,
            n_layers: cfg.n_layers,
            vocab_size: cfg.vocab_size,
        }
    }

    /// Refuses a loaded model (named `model` in the message) whose shape differs from the
    /// scan's.
    pub fn check(&self, path: &Path, model: &str, loaded: ModelShape) -> Result<()> {
        if *self == loaded {
            return Ok(());
        }
        Err(InterpError::database(
            path,
            format!(
                "was scanned with a model of d_model {}, {} layers and {} tokens, but the model \
                 `{model}` has d_model {}, {} layers and {} tokens (pass --model with the \
                 scan's model)",
                self.d_model,
                self.n_layers,
                self.vocab_size,
                loaded.d_model,
                loaded.n_layers,
                loaded.vocab_size
            ),
        ))
    }
}

/// A SQLite failure, in words that say what is wrong with the file.
pub fn explain(path: &Path, e: rusqlite::Error) -> InterpError {
    let message = match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            "is locked by another process (is a scan still writing it?)".to_string()
        }
        Some(ErrorCode::NotADatabase) => {
            "is not a SQLite database (or is truncated or damaged)".to_string()
        }
        Some(ErrorCode::DatabaseCorrupt) => {
            "is damaged (truncated or partly overwritten?): SQLite reports a malformed \
             database"
                .to_string()
        }
        Some(ErrorCode::ReadOnly) => "is read-only: cannot store new rows".to_string(),
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
    InterpError::database(path, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape() -> ModelShape {
        ModelShape {
            d_model: 32,
            n_layers: 2,
            vocab_size: 300,
        }
    }

    #[test]
    fn a_foreign_sqlite_file_and_a_bad_model_config_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let foreign = dir.path().join("foreign.sqlite");
        Connection::open(&foreign)
            .unwrap()
            .execute_batch("CREATE TABLE t (x)")
            .unwrap();
        let e = open(&foreign, Access::ReadOnly).unwrap_err().to_string();
        assert!(e.contains("foreign.sqlite"), "{e}");
        assert!(e.contains("not a saelab feature database"), "{e}");

        let odd = dir.path().join("odd.sqlite");
        let conn = Connection::open(&odd).unwrap();
        conn.execute_batch(super::super::schema::CREATE).unwrap();
        conn.execute_batch(&format!(
            "INSERT INTO meta VALUES ('format', '{FORMAT}'), \
             ('schema_version', '{SCHEMA_VERSION}'), ('model_config', '[1, 2]')"
        ))
        .unwrap();
        drop(conn);
        let e = open(&odd, Access::ReadOnly).unwrap_err().to_string();
        assert!(
            e.contains("meta.model_config is not the expected JSON"),
            "{e}"
        );

        let e = open(dir.path(), Access::ReadOnly).unwrap_err().to_string();
        assert!(e.contains("is a folder"), "{e}");
    }

    #[test]
    fn a_model_of_another_shape_is_refused_with_both_shapes() {
        let s = shape();
        assert!(s.check(Path::new("f.db"), "m", shape()).is_ok());
        let loaded = ModelShape {
            n_layers: 3,
            ..shape()
        };
        let e = s
            .check(Path::new("f.db"), "m", loaded)
            .unwrap_err()
            .to_string();
        assert!(e.contains("2 layers") && e.contains("3 layers"), "{e}");
    }
}
