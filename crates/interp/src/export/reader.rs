//! A feature database read back as plain records, a range of features at a time, so an
//! export's memory is bounded by its batch, not the dictionary. Format-neutral: each
//! exporter decides how records become files.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection};

use crate::db::open::{explain, open, Access};
use crate::db::{blob, DatabaseInfo};
use crate::error::{InterpError, Result};

pub struct FeatureReader {
    conn: Connection,
    path: PathBuf,
    pub info: DatabaseInfo,
    pub scan: ScanFacts,
    /// Each token's display text, by id.
    pub vocabulary: Vec<String>,
    pub dictionaries: Vec<DictionaryRow>,
}

/// What the scan read, from `meta`.
#[derive(Clone, Debug, PartialEq)]
pub struct ScanFacts {
    pub corpus: String,
    /// Window positions read (start tokens included).
    pub tokens: u64,
    /// Tokens per window.
    pub ctx: u64,
}

impl ScanFacts {
    /// Windows the scan read (the last may have been cut short by a token limit).
    pub fn windows(&self) -> u64 {
        self.tokens.div_ceil(self.ctx.max(1))
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct DictionaryRow {
    pub id: i64,
    pub name: String,
    pub hook: String,
    pub d_sae: u32,
    /// Positions counted (special tokens left out unless the scan included them).
    pub positions: u64,
    /// The activation histograms' bin edges, one more than bins.
    pub hist_edges: Vec<f64>,
}

/// A feature's line in a listing.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FeatureSummary {
    pub index: u32,
    pub count: u64,
    pub density: f64,
    pub max_act: f64,
    /// P(fires at the next position | fires here); `None` when too rare to say.
    pub p_stay: Option<f64>,
    /// Mean run length; `None` when it never fired.
    pub mean_run: Option<f64>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct FeatureRecord {
    pub index: u32,
    pub count: u64,
    pub density: f64,
    pub max_act: f64,
    /// Counts between `DictionaryRow::hist_edges`.
    pub hist: Vec<u32>,
    /// Logit lens: (token, value), most promoted first.
    pub lens_promoted: Vec<(u32, f64)>,
    /// Most suppressed (most negative) first.
    pub lens_suppressed: Vec<(u32, f64)>,
    /// Strongest first.
    pub top: Vec<ExampleRecord>,
    /// In bin order (lowest activations first).
    pub bins: Vec<BinRecord>,
}

/// An example's shown context: window tokens from `start`, one per stored activation.
#[derive(Clone, Debug, PartialEq)]
pub struct ExampleRecord {
    pub ids: Vec<u32>,
    pub acts: Vec<f32>,
    /// Index of the example's own token in `ids`.
    pub at: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub struct BinRecord {
    pub lo: f64,
    pub hi: f64,
    pub count: u64,
    pub examples: Vec<ExampleRecord>,
}

impl FeatureReader {
    pub fn open(path: &Path) -> Result<Self> {
        let (conn, info) = open(path, Access::ReadOnly)?;
        let meta = |key: &str| -> Result<String> {
            match conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0)) {
                Ok(v) => Ok(v),
                Err(rusqlite::Error::QueryReturnedNoRows) => Ok(String::new()),
                Err(e) => Err(explain(path, e)),
            }
        };
        let number = |key: &str| -> Result<u64> {
            meta(key)?.parse().map_err(|_| {
                InterpError::database(path, format!("meta.{key} is not a whole number"))
            })
        };
        let scan = ScanFacts {
            corpus: meta("corpus")?,
            tokens: number("tokens")?,
            ctx: number("ctx")?,
        };
        let vocabulary = read_vocabulary(&conn).map_err(|e| explain(path, e))?;
        let dictionaries = read_dictionaries(&conn).map_err(|e| explain(path, e))?;
        Ok(FeatureReader {
            conn,
            path: path.to_path_buf(),
            info,
            scan,
            vocabulary,
            dictionaries,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The dictionary's features that fired at least once, and those that never did.
    pub fn split_dead(&self, dict: &DictionaryRow) -> Result<(Vec<u32>, Vec<u32>)> {
        let mut stmt = self
            .conn
            .prepare("SELECT feature, count FROM features WHERE dict = ?1 ORDER BY feature")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([dict.id], |r| {
                Ok((r.get::<_, u32>(0)?, r.get::<_, i64>(1)?))
            })
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(|e| self.err(e))?;
        let (alive, dead): (Vec<_>, Vec<_>) = rows.into_iter().partition(|(_, c)| *c > 0);
        Ok((
            alive.into_iter().map(|(f, _)| f).collect(),
            dead.into_iter().map(|(f, _)| f).collect(),
        ))
    }

    /// Every feature of the dictionary, silent ones included, in index order: how often it
    /// fired, its density, its largest activation and its persistence.
    pub fn summaries(&self, dict: &DictionaryRow) -> Result<Vec<FeatureSummary>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT feature, count, density, max_act, p_stay, mean_run FROM features \
                 WHERE dict = ?1 ORDER BY feature",
            )
            .map_err(|e| self.err(e))?;
        stmt.query_map([dict.id], |r| {
            Ok(FeatureSummary {
                index: r.get(0)?,
                count: r.get::<_, i64>(1)?.max(0) as u64,
                density: r.get(2)?,
                max_act: r.get(3)?,
                p_stay: r.get(4)?,
                mean_run: r.get(5)?,
            })
        })
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(|e| self.err(e))
    }

    /// Features `first..=last` of the dictionary that fired, in index order.
    pub fn features(
        &self,
        dict: &DictionaryRow,
        first: u32,
        last: u32,
    ) -> Result<Vec<FeatureRecord>> {
        self.read_range(dict.id, first, last).map_err(|e| match e {
            RangeError::Sqlite(e) => self.err(e),
            RangeError::Damaged(message) => InterpError::database(&self.path, message),
        })
    }

    fn err(&self, e: rusqlite::Error) -> InterpError {
        explain(&self.path, e)
    }

    fn read_range(
        &self,
        dict: i64,
        first: u32,
        last: u32,
    ) -> std::result::Result<Vec<FeatureRecord>, RangeError> {
        let mut features = self
            .conn
            .prepare_cached(
                "SELECT feature, count, density, max_act, hist FROM features \
                 WHERE dict = ?1 AND feature BETWEEN ?2 AND ?3 AND count > 0 ORDER BY feature",
            )?
            .query_map(params![dict, first, last], |r| {
                Ok(FeatureRecord {
                    index: r.get(0)?,
                    count: r.get::<_, i64>(1)?.max(0) as u64,
                    density: r.get(2)?,
                    max_act: r.get(3)?,
                    hist: blob::u32_column(r, 4)?,
                    lens_promoted: Vec::new(),
                    lens_suppressed: Vec::new(),
                    top: Vec::new(),
                    bins: Vec::new(),
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;

        let mut lens = self.conn.prepare_cached(
            "SELECT feature, side, token, value FROM lens \
             WHERE dict = ?1 AND feature BETWEEN ?2 AND ?3 ORDER BY feature, side DESC, rank",
        )?;
        let mut rows = lens.query(params![dict, first, last])?;
        while let Some(r) = rows.next()? {
            let Some(i) = slot(&features, r.get(0)?) else {
                continue;
            };
            let entry = (r.get::<_, u32>(2)?, r.get::<_, f64>(3)?);
            if r.get::<_, i64>(1)? > 0 {
                features[i].lens_promoted.push(entry);
            } else {
                features[i].lens_suppressed.push(entry);
            }
        }

        let mut bins = self.conn.prepare_cached(
            "SELECT feature, bin, lo, hi, count FROM quantile_bins \
             WHERE dict = ?1 AND feature BETWEEN ?2 AND ?3 ORDER BY feature, bin",
        )?;
        let mut rows = bins.query(params![dict, first, last])?;
        while let Some(r) = rows.next()? {
            let Some(i) = slot(&features, r.get(0)?) else {
                continue;
            };
            let bin: usize = r.get::<_, u32>(1)? as usize;
            let record = BinRecord {
                lo: r.get(2)?,
                hi: r.get(3)?,
                count: r.get::<_, i64>(4)?.max(0) as u64,
                examples: Vec::new(),
            };
            let bins = &mut features[i].bins;
            if bins.len() <= bin {
                bins.resize_with(bin + 1, || BinRecord {
                    lo: 0.0,
                    hi: 0.0,
                    count: 0,
                    examples: Vec::new(),
                });
            }
            bins[bin] = record;
        }

        let mut examples = self.conn.prepare_cached(
            "SELECT e.id, e.feature, e.kind, e.bin, e.pos, e.start, e.acts, w.ids \
             FROM examples e JOIN windows w ON w.id = e.window \
             WHERE e.dict = ?1 AND e.feature BETWEEN ?2 AND ?3 \
             ORDER BY e.feature, e.kind DESC, e.bin, e.rank",
        )?;
        let mut rows = examples.query(params![dict, first, last])?;
        while let Some(r) = rows.next()? {
            let Some(i) = slot(&features, r.get(1)?) else {
                continue;
            };
            let id: i64 = r.get(0)?;
            let (pos, start): (u32, u32) = (r.get(4)?, r.get(5)?);
            let acts = blob::f32_column(r, 6)?;
            let window = blob::u32_column(r, 7)?;
            let ids: Vec<u32> = window.iter().skip(start as usize).copied().collect();
            let at = pos.checked_sub(start).map(|a| a as usize);
            let example = match at {
                Some(at) if at < acts.len() && acts.len() <= ids.len() => ExampleRecord {
                    ids: ids[..acts.len()].to_vec(),
                    acts,
                    at,
                },
                _ => {
                    return Err(RangeError::Damaged(format!(
                        "example {id}: position {pos} is not among its {} shown tokens from \
                         {start} (window of {} tokens)",
                        acts.len(),
                        window.len()
                    )))
                }
            };
            let kind: String = r.get(2)?;
            match (kind.as_str(), r.get::<_, Option<u32>>(3)?) {
                ("top", _) => features[i].top.push(example),
                (_, Some(bin)) => match features[i].bins.get_mut(bin as usize) {
                    Some(b) => b.examples.push(example),
                    None => {
                        return Err(RangeError::Damaged(format!(
                            "example {id}: no quantile bin {bin}"
                        )))
                    }
                },
                (other, None) => {
                    return Err(RangeError::Damaged(format!(
                        "example {id}: kind `{other}` without a bin"
                    )))
                }
            }
        }
        Ok(features)
    }
}

/// Why a range could not be read: SQLite failed, or a row contradicts the schema.
enum RangeError {
    Sqlite(rusqlite::Error),
    Damaged(String),
}

impl From<rusqlite::Error> for RangeError {
    fn from(e: rusqlite::Error) -> Self {
        RangeError::Sqlite(e)
    }
}

/// Where feature `index` sits in `features` (sorted by index), if it is there.
fn slot(features: &[FeatureRecord], index: u32) -> Option<usize> {
    features.binary_search_by_key(&index, |f| f.index).ok()
}

fn read_vocabulary(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut texts = Vec::new();
    let mut stmt = conn.prepare("SELECT id, text FROM tokens ORDER BY id")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let id = r.get::<_, u32>(0)? as usize;
        if id >= texts.len() {
            texts.resize(id + 1, String::new());
        }
        texts[id] = r.get(1)?;
    }
    Ok(texts)
}

fn read_dictionaries(conn: &Connection) -> rusqlite::Result<Vec<DictionaryRow>> {
    conn.prepare(
        "SELECT id, name, hook, d_sae, positions, hist_edges FROM dictionaries ORDER BY id",
    )?
    .query_map([], |r| {
        let edges: String = r.get(5)?;
        let hist_edges = serde_json::from_str(&edges).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(5, rusqlite::types::Type::Text, e.into())
        })?;
        Ok(DictionaryRow {
            id: r.get(0)?,
            name: r.get(1)?,
            hook: r.get(2)?,
            d_sae: r.get(3)?,
            positions: r.get::<_, i64>(4)?.max(0) as u64,
            hist_edges,
        })
    })?
    .collect()
}
