//! What every page needs and never changes while serving: the meta table, the vocabulary's
//! display texts, the dictionaries and their density histograms. Read once at start.

use rusqlite::Connection;
use serde::Serialize;

/// Density histogram bins are this wide in log10 density.
pub const DENSITY_BIN_WIDTH: f64 = 0.25;

pub struct Catalog {
    /// `meta` rows in key order.
    pub meta: Vec<(String, String)>,
    pub vocabulary: Vocabulary,
    pub dictionaries: Vec<DictionaryInfo>,
    /// Tokens left out of every lens, with why.
    pub lens_excluded: Vec<(u32, String)>,
}

impl Catalog {
    pub fn read(conn: &Connection) -> rusqlite::Result<Catalog> {
        let meta = conn
            .prepare("SELECT key, value FROM meta ORDER BY key")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<Vec<(String, String)>>>()?;
        let vocabulary = Vocabulary::read(conn)?;
        let mut dictionaries = conn
            .prepare(
                "SELECT id, name, path, hook, architecture, d_in, d_sae, positions, l0, lens, \
                 hist_edges FROM dictionaries ORDER BY id",
            )?
            .query_map([], |r| {
                let edges: String = r.get(10)?;
                Ok(DictionaryInfo {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    path: r.get(2)?,
                    hook: r.get(3)?,
                    architecture: r.get(4)?,
                    d_in: r.get(5)?,
                    d_sae: r.get(6)?,
                    positions: super::get_u64(r, 7)?,
                    l0: r.get(8)?,
                    lens: r.get(9)?,
                    hist_edges: serde_json::from_str(&edges).unwrap_or_default(),
                    density: DensityHistogram::default(),
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        for d in &mut dictionaries {
            d.density = DensityHistogram::read(conn, d.id)?;
        }
        let lens_excluded = conn
            .prepare("SELECT token, reason FROM lens_excluded ORDER BY token")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<Vec<(u32, String)>>>()?;
        Ok(Catalog {
            meta,
            vocabulary,
            dictionaries,
            lens_excluded,
        })
    }

    pub fn meta(&self, key: &str) -> Option<&str> {
        self.meta
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn dictionary(&self, name: &str) -> Option<&DictionaryInfo> {
        self.dictionaries.iter().find(|d| d.name == name)
    }

    pub fn dictionary_by_id(&self, id: i64) -> Option<&DictionaryInfo> {
        self.dictionaries.iter().find(|d| d.id == id)
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct DictionaryInfo {
    pub id: i64,
    pub name: String,
    pub path: String,
    pub hook: String,
    pub architecture: String,
    pub d_in: u32,
    pub d_sae: u32,
    pub positions: u64,
    pub l0: f64,
    /// How the logit lens was computed, or why there is none.
    pub lens: String,
    /// The activation histograms' bin edges (log-spaced, one more than bins).
    pub hist_edges: Vec<f64>,
    #[serde(skip)]
    pub density: DensityHistogram,
}

/// Features per `DENSITY_BIN_WIDTH`-wide bin of log10 density, dead features apart.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DensityHistogram {
    /// log10 density at the left edge of bin 0.
    pub first_edge: f64,
    pub counts: Vec<u64>,
    pub dead: u64,
}

impl DensityHistogram {
    fn read(conn: &Connection, dict: i64) -> rusqlite::Result<Self> {
        let mut stmt = conn.prepare_cached("SELECT density FROM features WHERE dict = ?1")?;
        let densities = stmt
            .query_map([dict], |r| r.get::<_, f64>(0))?
            .collect::<rusqlite::Result<Vec<f64>>>()?;
        Ok(Self::from_densities(&densities))
    }

    pub fn from_densities(densities: &[f64]) -> Self {
        let logs: Vec<f64> = densities
            .iter()
            .filter(|d| **d > 0.0 && d.is_finite())
            .map(|d| d.log10())
            .collect();
        let dead = (densities.len() - logs.len()) as u64;
        let Some(lo) = logs.iter().copied().reduce(f64::min) else {
            return DensityHistogram {
                first_edge: 0.0,
                counts: Vec::new(),
                dead,
            };
        };
        let hi = logs.iter().copied().fold(lo, f64::max);
        let first_edge = (lo / DENSITY_BIN_WIDTH).floor() * DENSITY_BIN_WIDTH;
        let bins = (((hi - first_edge) / DENSITY_BIN_WIDTH).floor() as usize + 1).max(1);
        let mut counts = vec![0u64; bins];
        for l in logs {
            let b = ((l - first_edge) / DENSITY_BIN_WIDTH).floor() as usize;
            counts[b.min(bins - 1)] += 1;
        }
        DensityHistogram {
            first_edge,
            counts,
            dead,
        }
    }
}

/// Every token's display text (decoded alone) and whether it is special.
pub struct Vocabulary {
    texts: Vec<String>,
    special: Vec<bool>,
    /// Each text trimmed and lower-cased, what a token search compares.
    search_keys: Vec<String>,
}

impl Vocabulary {
    fn read(conn: &Connection) -> rusqlite::Result<Self> {
        let mut texts = Vec::new();
        let mut special = Vec::new();
        let mut stmt = conn.prepare("SELECT id, text, special FROM tokens ORDER BY id")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let id: u32 = r.get(0)?;
            let id = id as usize;
            if id >= texts.len() {
                texts.resize(id + 1, String::new());
                special.resize(id + 1, false);
            }
            texts[id] = r.get(1)?;
            special[id] = r.get::<_, i64>(2)? != 0;
        }
        let search_keys = texts.iter().map(|t| t.trim().to_lowercase()).collect();
        Ok(Vocabulary {
            texts,
            special,
            search_keys,
        })
    }

    /// The token's text; an id the table lacks reads as `<token N>`.
    pub fn text(&self, id: u32) -> String {
        self.texts
            .get(id as usize)
            .cloned()
            .unwrap_or_else(|| format!("<token {id}>"))
    }

    pub fn is_special(&self, id: u32) -> bool {
        self.special.get(id as usize).copied().unwrap_or(false)
    }

    /// Ids whose text, trimmed, equals `needle` trimmed, ignoring case.
    pub fn matching(&self, needle: &str) -> Vec<u32> {
        let needle = needle.trim().to_lowercase();
        if needle.is_empty() {
            return Vec::new();
        }
        self.search_keys
            .iter()
            .enumerate()
            .filter(|(_, k)| **k == needle)
            .map(|(i, _)| i as u32)
            .collect()
    }
}
