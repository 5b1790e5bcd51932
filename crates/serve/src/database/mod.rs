//! The feature database as the browser reads it (opened and checked at start by
//! `saelab_interp::db::open`): a pool of read-only connections, one writer for ablations,
//! and the queries behind each page.

pub mod ablations;
pub mod catalog;
pub mod feature;
pub mod listing;
pub mod pool;
pub mod search;

/// A non-negative integer column (SQLite integers are signed; a negative count reads as 0).
pub fn get_u64(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<u64> {
    Ok(row.get::<_, i64>(index)?.max(0) as u64)
}
