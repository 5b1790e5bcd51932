//! Everything the feature page shows, read in a handful of indexed queries.

use rusqlite::{Connection, OptionalExtension};
use saelab_interp::db::blob;
use serde::Serialize;

use super::catalog::{Catalog, DictionaryInfo};

#[derive(Debug, Serialize)]
pub struct FeatureData {
    pub dictionary: String,
    pub feature: u32,
    pub stats: FeatureStats,
    /// Activation histogram counts, bins between `hist_edges`.
    pub hist: Vec<u32>,
    pub hist_edges: Vec<f64>,
    pub lens_promoted: Vec<LensEntry>,
    pub lens_suppressed: Vec<LensEntry>,
    pub top: Vec<Example>,
    pub quantiles: Vec<QuantileGroup>,
    pub nearest: Vec<NearestGroup>,
}

#[derive(Clone, Debug, Serialize)]
pub struct FeatureStats {
    pub count: u64,
    pub density: f64,
    pub mean_act: f64,
    pub max_act: f64,
    /// P(fires at the next position | fires here); `None`: too few firings to say.
    pub p_stay: Option<f64>,
    /// Mean length of its runs of consecutive firing positions.
    pub mean_run: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct LensEntry {
    pub rank: u32,
    pub token: u32,
    pub text: String,
    pub value: f64,
}

#[derive(Debug, Serialize)]
pub struct Example {
    pub id: i64,
    pub rank: u32,
    pub window: i64,
    /// The example's position in its window.
    pub pos: u32,
    pub value: f32,
    /// Window position of the first shown token.
    pub start: u32,
    pub tokens: Vec<ShownToken>,
    /// Whether its ablation is stored already.
    pub ablated: bool,
}

impl Example {
    /// Index of the example's own token in `tokens`, when shown.
    pub fn marked(&self) -> Option<usize> {
        let at = self.pos.checked_sub(self.start)? as usize;
        (at < self.tokens.len()).then_some(at)
    }
}

#[derive(Debug, Serialize)]
pub struct ShownToken {
    pub id: u32,
    pub text: String,
    /// This feature's activation at the token.
    pub act: f32,
}

#[derive(Debug, Serialize)]
pub struct QuantileGroup {
    pub bin: u32,
    pub lo: f64,
    pub hi: f64,
    pub count: u64,
    pub examples: Vec<Example>,
}

#[derive(Debug, Serialize)]
pub struct NearestGroup {
    pub other: String,
    pub entries: Vec<NearestEntry>,
}

#[derive(Debug, Serialize)]
pub struct NearestEntry {
    pub feature: u32,
    pub cosine: f64,
}

pub fn stats(
    conn: &Connection,
    dict: i64,
    feature: u32,
) -> rusqlite::Result<Option<(FeatureStats, Vec<u32>)>> {
    conn.prepare_cached(
        "SELECT count, density, mean_act, max_act, hist, p_stay, mean_run FROM features \
         WHERE dict = ?1 AND feature = ?2",
    )?
    .query_row((dict, feature), |r| {
        Ok((
            FeatureStats {
                count: super::get_u64(r, 0)?,
                density: r.get(1)?,
                mean_act: r.get(2)?,
                max_act: r.get(3)?,
                p_stay: r.get(5)?,
                mean_run: r.get(6)?,
            },
            blob::u32_column(r, 4)?,
        ))
    })
    .optional()
}

/// The feature's page data, or None when the database has no row for it.
pub fn read(
    conn: &Connection,
    catalog: &Catalog,
    dict: &DictionaryInfo,
    feature: u32,
) -> rusqlite::Result<Option<FeatureData>> {
    let Some((stats, hist)) = stats(conn, dict.id, feature)? else {
        return Ok(None);
    };
    let (lens_promoted, lens_suppressed) = lens(conn, catalog, dict.id, feature)?;
    let (top, quantile_examples) = examples(conn, catalog, dict.id, feature)?;
    let quantiles = quantile_groups(conn, dict.id, feature, quantile_examples)?;
    let nearest = nearest(conn, catalog, dict.id, feature)?;
    Ok(Some(FeatureData {
        dictionary: dict.name.clone(),
        feature,
        stats,
        hist,
        hist_edges: dict.hist_edges.clone(),
        lens_promoted,
        lens_suppressed,
        top,
        quantiles,
        nearest,
    }))
}

type LensSides = (Vec<LensEntry>, Vec<LensEntry>);

fn lens(
    conn: &Connection,
    catalog: &Catalog,
    dict: i64,
    feature: u32,
) -> rusqlite::Result<LensSides> {
    let mut stmt = conn.prepare_cached(
        "SELECT side, rank, token, value FROM lens WHERE dict = ?1 AND feature = ?2 \
         ORDER BY side DESC, rank",
    )?;
    let mut rows = stmt.query((dict, feature))?;
    let (mut promoted, mut suppressed) = (Vec::new(), Vec::new());
    while let Some(r) = rows.next()? {
        let side: i64 = r.get(0)?;
        let token: u32 = r.get(2)?;
        let entry = LensEntry {
            rank: r.get(1)?,
            token,
            text: catalog.vocabulary.text(token),
            value: r.get(3)?,
        };
        if side > 0 {
            promoted.push(entry);
        } else {
            suppressed.push(entry);
        }
    }
    Ok((promoted, suppressed))
}

/// Top examples, and quantile examples with their bin.
type TopAndQuantile = (Vec<Example>, Vec<(u32, Example)>);

/// Top examples in rank order, and quantile examples as (bin, example) in bin then rank order.
fn examples(
    conn: &Connection,
    catalog: &Catalog,
    dict: i64,
    feature: u32,
) -> rusqlite::Result<TopAndQuantile> {
    let mut stmt = conn.prepare_cached(
        "SELECT e.id, e.kind, e.bin, e.rank, e.window, e.pos, e.value, e.start, e.acts, w.ids, \
         a.example IS NOT NULL \
         FROM examples e JOIN windows w ON w.id = e.window \
         LEFT JOIN ablations a ON a.example = e.id \
         WHERE e.dict = ?1 AND e.feature = ?2 ORDER BY e.kind DESC, e.bin, e.rank",
    )?;
    let mut rows = stmt.query((dict, feature))?;
    let (mut top, mut quantile) = (Vec::new(), Vec::new());
    while let Some(r) = rows.next()? {
        let kind: String = r.get(1)?;
        let start: u32 = r.get(7)?;
        let example = Example {
            id: r.get(0)?,
            rank: r.get(3)?,
            window: r.get(4)?,
            pos: r.get(5)?,
            value: r.get::<_, f64>(6)? as f32,
            start,
            tokens: shown_tokens(
                catalog,
                &blob::u32_column(r, 9)?,
                start,
                &blob::f32_column(r, 8)?,
            ),
            ablated: r.get(10)?,
        };
        match kind.as_str() {
            "top" => top.push(example),
            _ => quantile.push((r.get::<_, Option<u32>>(2)?.unwrap_or(0), example)),
        }
    }
    Ok((top, quantile))
}

/// The shown context: window tokens from `start`, one per stored activation (cut short if a
/// row claims more tokens than its window holds).
pub fn shown_tokens(catalog: &Catalog, ids: &[u32], start: u32, acts: &[f32]) -> Vec<ShownToken> {
    ids.iter()
        .skip(start as usize)
        .zip(acts)
        .map(|(&id, &act)| ShownToken {
            id,
            text: catalog.vocabulary.text(id),
            act,
        })
        .collect()
}

fn quantile_groups(
    conn: &Connection,
    dict: i64,
    feature: u32,
    examples: Vec<(u32, Example)>,
) -> rusqlite::Result<Vec<QuantileGroup>> {
    let mut groups = conn
        .prepare_cached(
            "SELECT bin, lo, hi, count FROM quantile_bins WHERE dict = ?1 AND feature = ?2 \
             ORDER BY bin",
        )?
        .query_map((dict, feature), |r| {
            Ok(QuantileGroup {
                bin: r.get(0)?,
                lo: r.get(1)?,
                hi: r.get(2)?,
                count: super::get_u64(r, 3)?,
                examples: Vec::new(),
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for (bin, example) in examples {
        if let Some(g) = groups.iter_mut().find(|g| g.bin == bin) {
            g.examples.push(example);
        }
    }
    Ok(groups)
}

fn nearest(
    conn: &Connection,
    catalog: &Catalog,
    dict: i64,
    feature: u32,
) -> rusqlite::Result<Vec<NearestGroup>> {
    let mut stmt = conn.prepare_cached(
        "SELECT other, other_feature, cosine FROM nearest WHERE dict = ?1 AND feature = ?2 \
         ORDER BY other, rank",
    )?;
    let mut rows = stmt.query((dict, feature))?;
    let mut groups: Vec<(i64, NearestGroup)> = Vec::new();
    while let Some(r) = rows.next()? {
        let other: i64 = r.get(0)?;
        let entry = NearestEntry {
            feature: r.get(1)?,
            cosine: r.get(2)?,
        };
        match groups.last_mut() {
            Some((id, g)) if *id == other => g.entries.push(entry),
            _ => {
                let name = catalog
                    .dictionary_by_id(other)
                    .map_or_else(|| format!("dictionary {other}"), |d| d.name.clone());
                groups.push((
                    other,
                    NearestGroup {
                        other: name,
                        entries: vec![entry],
                    },
                ));
            }
        }
    }
    Ok(groups.into_iter().map(|(_, g)| g).collect())
}
