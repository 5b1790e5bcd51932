//! One page of a dictionary's feature table, sorted server-side.

use rusqlite::Connection;
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortKey {
    Density,
    MaxAct,
    MeanAct,
    Persistence,
    Index,
}

impl SortKey {
    pub const ALL: [SortKey; 5] = [
        SortKey::Index,
        SortKey::Density,
        SortKey::MeanAct,
        SortKey::MaxAct,
        SortKey::Persistence,
    ];

    pub fn parse(s: &str) -> Option<SortKey> {
        match s {
            "density" => Some(SortKey::Density),
            "max" => Some(SortKey::MaxAct),
            "mean" => Some(SortKey::MeanAct),
            "persistence" => Some(SortKey::Persistence),
            "index" => Some(SortKey::Index),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SortKey::Density => "density",
            SortKey::MaxAct => "max",
            SortKey::MeanAct => "mean",
            SortKey::Persistence => "persistence",
            SortKey::Index => "index",
        }
    }

    fn column(self) -> &'static str {
        match self {
            SortKey::Density => "density",
            SortKey::MaxAct => "max_act",
            SortKey::MeanAct => "mean_act",
            // NULL (too few firings to say) comes last in either order.
            SortKey::Persistence => "p_stay",
            SortKey::Index => "feature",
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Listing {
    pub sort: SortKey,
    pub descending: bool,
    /// 0-based.
    pub page: u64,
    pub per_page: u64,
}

#[derive(Debug, Serialize)]
pub struct FeatureRow {
    pub feature: u32,
    pub count: u64,
    pub density: f64,
    pub mean_act: f64,
    pub max_act: f64,
    /// P(fires at the next position | fires here); `None`: too few firings to say.
    pub p_stay: Option<f64>,
    /// The lens's most promoted tokens, strongest first.
    pub promoted: Vec<u32>,
}

/// Number of feature rows of a dictionary.
pub fn count(conn: &Connection, dict: i64) -> rusqlite::Result<u64> {
    conn.prepare_cached("SELECT count(*) FROM features WHERE dict = ?1")?
        .query_row([dict], |r| super::get_u64(r, 0))
}

pub fn page(conn: &Connection, dict: i64, listing: Listing) -> rusqlite::Result<Vec<FeatureRow>> {
    // The column and direction come from fixed strings, never from the request.
    let order = if listing.descending { "DESC" } else { "ASC" };
    let sql = format!(
        "SELECT feature, count, density, mean_act, max_act, p_stay FROM features \
         WHERE dict = ?1 \
         ORDER BY {col} {order} NULLS LAST, feature ASC LIMIT ?2 OFFSET ?3",
        col = listing.sort.column()
    );
    let offset = listing.page.saturating_mul(listing.per_page);
    let mut rows = conn
        .prepare_cached(&sql)?
        .query_map((dict, listing.per_page as i64, offset as i64), |r| {
            Ok(FeatureRow {
                feature: r.get(0)?,
                count: super::get_u64(r, 1)?,
                density: r.get(2)?,
                mean_act: r.get(3)?,
                max_act: r.get(4)?,
                p_stay: r.get(5)?,
                promoted: Vec::new(),
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut lens = conn.prepare_cached(
        "SELECT token FROM lens WHERE dict = ?1 AND feature = ?2 AND side = 1 AND rank < 3 \
         ORDER BY rank",
    )?;
    for row in &mut rows {
        row.promoted = lens
            .query_map((dict, row.feature), |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<u32>>>()?;
    }
    Ok(rows)
}
