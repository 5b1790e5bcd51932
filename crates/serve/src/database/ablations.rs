//! Stored ablations, and the example rows an ablation is computed for.

use rusqlite::{Connection, OptionalExtension};

use saelab_interp::db::blob;

/// An example to ablate: its window's tokens, position and shown range.
#[derive(Debug)]
pub struct Target {
    pub ids: Vec<u32>,
    pub pos: u32,
    pub start: u32,
    pub acts: Vec<f32>,
    pub value: f32,
}

#[derive(Clone, Debug)]
pub struct Stored {
    pub method: String,
    pub base: f32,
    /// Per position `start..pos`: activation with that token removed minus `base`; NaN
    /// where the token was kept.
    pub deltas: Vec<f32>,
}

/// The example `id` of this dictionary's feature, or None when it is not one of its examples.
pub fn target(
    conn: &Connection,
    dict: i64,
    feature: u32,
    id: i64,
) -> rusqlite::Result<Option<Target>> {
    conn.prepare_cached(
        "SELECT w.ids, e.pos, e.start, e.acts, e.value FROM examples e \
         JOIN windows w ON w.id = e.window WHERE e.id = ?1 AND e.dict = ?2 AND e.feature = ?3",
    )?
    .query_row((id, dict, feature), |r| {
        Ok(Target {
            ids: blob::u32_column(r, 0)?,
            pos: r.get(1)?,
            start: r.get(2)?,
            acts: blob::f32_column(r, 3)?,
            value: r.get::<_, f64>(4)? as f32,
        })
    })
    .optional()
}

pub fn stored(conn: &Connection, example: i64) -> rusqlite::Result<Option<Stored>> {
    conn.prepare_cached("SELECT method, base, deltas FROM ablations WHERE example = ?1")?
        .query_row([example], |r| {
            Ok(Stored {
                method: r.get(0)?,
                base: r.get::<_, f64>(1)? as f32,
                deltas: blob::f32_column(r, 2)?,
            })
        })
        .optional()
}

/// Stores an ablation; one already stored for the example is kept.
pub fn insert(conn: &Connection, example: i64, ablation: &Stored) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT OR IGNORE INTO ablations (example, method, base, deltas) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute((
        example,
        &ablation.method,
        f64::from(ablation.base),
        blob::from_f32(&ablation.deltas),
    ))?;
    Ok(())
}
