//! Writing a feature database: into a temporary file beside the target, in one transaction,
//! renamed into place only when complete, so a killed run never leaves a partial database
//! under the final name. The writer locks its temporary file, so that the next writer can
//! tell the files of killed runs (which no one holds) from a live one's, and removes them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection};

use super::blob;
use super::open::explain;
use super::schema::{CREATE, FORMAT, SCHEMA_VERSION};
use crate::ablation::Ablation;
use crate::error::{InterpError, Result};
use crate::lens::{Excluded, FeatureLens};
use crate::scan::example::WindowIds;
use crate::scan::{DictionaryScan, Example};

pub struct DatabaseWriter {
    conn: Connection,
    temp: PathBuf,
    /// Held while writing: the kernel releases it however the process ends.
    _lock: std::fs::File,
    path: PathBuf,
    windows: BTreeMap<u64, WindowIds>,
    next_dictionary: i64,
}

/// What `add_dictionary` stored: the dictionary's id and, per feature, the ids of its top
/// examples (strongest first), for ablations computed afterwards.
pub struct DictionaryRows {
    pub id: i64,
    pub top_examples: Vec<Vec<i64>>,
}

impl DatabaseWriter {
    /// Starts a database that will replace `path` when finished.
    pub fn create(path: &Path) -> Result<Self> {
        let name = path
            .file_name()
            .ok_or_else(|| InterpError::database(path, "not a file name"))?;
        let temp = path.with_file_name(format!(
            ".{}.partial-{}",
            name.to_string_lossy(),
            std::process::id()
        ));
        remove_stale_partials(path, &name.to_string_lossy());
        let _ = std::fs::remove_file(&temp);
        let lock = std::fs::File::create(&temp)
            .map_err(|e| InterpError::database(&temp, e.to_string()))?;
        // Where the file system has no locks, no other writer can lock it either, and so
        // none removes it: the lock only adds the clean-up.
        let _ = lock.try_lock();
        let conn = Connection::open(&temp).map_err(|e| explain(&temp, e))?;
        // The temporary file is thrown away on any failure, so durability is not needed
        // until the final commit.
        conn.execute_batch("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;")
            .and_then(|_| conn.execute_batch(CREATE))
            .and_then(|_| conn.execute_batch("BEGIN"))
            .map_err(|e| explain(&temp, e))?;
        Ok(DatabaseWriter {
            conn,
            temp,
            _lock: lock,
            path: path.to_path_buf(),
            windows: BTreeMap::new(),
            next_dictionary: 1,
        })
    }

    fn err(&self, e: rusqlite::Error) -> InterpError {
        explain(&self.temp, e)
    }

    /// `meta` rows; `format` and `schema_version` are added here.
    pub fn meta(&mut self, pairs: &[(&str, String)]) -> Result<()> {
        let mut stmt = self
            .conn
            .prepare_cached("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)")
            .map_err(|e| explain(&self.temp, e))?;
        let fixed = [
            ("format", FORMAT.to_string()),
            ("schema_version", SCHEMA_VERSION.to_string()),
        ];
        for (k, v) in fixed.iter().chain(pairs.iter()) {
            stmt.execute(params![k, v])
                .map_err(|e| explain(&self.temp, e))?;
        }
        Ok(())
    }

    /// The vocabulary as displayed: each token's text and whether it is special.
    pub fn tokens(&mut self, tokens: &[(String, bool)]) -> Result<()> {
        let mut stmt = self
            .conn
            .prepare_cached("INSERT INTO tokens (id, text, special) VALUES (?1, ?2, ?3)")
            .map_err(|e| explain(&self.temp, e))?;
        for (id, (text, special)) in tokens.iter().enumerate() {
            stmt.execute(params![id as i64, text, *special])
                .map_err(|e| explain(&self.temp, e))?;
        }
        Ok(())
    }

    pub fn excluded(&mut self, excluded: &[Excluded]) -> Result<()> {
        let mut stmt = self
            .conn
            .prepare_cached("INSERT INTO lens_excluded (token, reason) VALUES (?1, ?2)")
            .map_err(|e| explain(&self.temp, e))?;
        for e in excluded {
            stmt.execute(params![e.token as i64, e.reason])
                .map_err(|e| explain(&self.temp, e))?;
        }
        Ok(())
    }

    /// A dictionary's scan, with its lens (`lens_text` says how it was computed, or why
    /// there is none).
    pub fn add_dictionary(
        &mut self,
        scan: &DictionaryScan,
        lens_text: &str,
        lens: Option<&[FeatureLens]>,
        hist_edges: &[f64],
    ) -> Result<DictionaryRows> {
        let id = self.next_dictionary;
        self.next_dictionary += 1;
        self.conn
            .execute(
                "INSERT INTO dictionaries (id, name, path, hook, architecture, d_in, d_sae, \
                 positions, l0, lens, hist_edges) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, \
                 ?10, ?11)",
                params![
                    id,
                    scan.name,
                    scan.path,
                    scan.hook.to_string(),
                    scan.architecture,
                    scan.d_in as i64,
                    scan.d_sae as i64,
                    scan.positions as i64,
                    scan.l0,
                    lens_text,
                    serde_json::to_string(hist_edges).unwrap_or_default(),
                ],
            )
            .map_err(|e| self.err(e))?;
        let mut top_examples = Vec::with_capacity(scan.features.len());
        for (f, feature) in scan.features.iter().enumerate() {
            self.conn
                .prepare_cached(
                    "INSERT INTO features (dict, feature, count, density, mean_act, max_act, \
                     hist, p_stay, mean_run) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        id,
                        f as i64,
                        feature.count as i64,
                        feature.density,
                        feature.mean,
                        feature.max as f64,
                        blob::from_u32(&feature.hist),
                        feature.p_stay,
                        feature.mean_run,
                    ])
                })
                .map_err(|e| self.err(e))?;
            let mut ids = Vec::with_capacity(feature.top.len());
            for (rank, e) in feature.top.iter().enumerate() {
                ids.push(self.example(id, f, "top", None, rank, e)?);
            }
            top_examples.push(ids);
            for (b, bin) in feature.bins.iter().enumerate() {
                self.conn
                    .prepare_cached(
                        "INSERT INTO quantile_bins (dict, feature, bin, lo, hi, count) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    )
                    .and_then(|mut s| {
                        s.execute(params![
                            id,
                            f as i64,
                            b as i64,
                            bin.lo as f64,
                            bin.hi as f64,
                            bin.count as i64
                        ])
                    })
                    .map_err(|e| self.err(e))?;
                for (rank, e) in bin.examples.iter().enumerate() {
                    self.example(id, f, "quantile", Some(b), rank, e)?;
                }
            }
            if let Some(l) = lens.and_then(|l| l.get(f)) {
                self.lens_rows(id, f, 1, &l.top)?;
                self.lens_rows(id, f, -1, &l.bottom)?;
            }
        }
        Ok(DictionaryRows { id, top_examples })
    }

    fn example(
        &mut self,
        dict: i64,
        feature: usize,
        kind: &str,
        bin: Option<usize>,
        rank: usize,
        e: &Example,
    ) -> Result<i64> {
        self.windows
            .entry(e.window)
            .or_insert_with(|| e.ids.clone());
        self.conn
            .prepare_cached(
                "INSERT INTO examples (dict, feature, kind, bin, rank, window, pos, token, \
                 value, start, acts) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    dict,
                    feature as i64,
                    kind,
                    bin.map(|b| b as i64),
                    rank as i64,
                    e.window as i64,
                    e.pos as i64,
                    e.token() as i64,
                    e.value as f64,
                    e.start as i64,
                    blob::from_f32(&e.acts),
                ])
            })
            .map_err(|e| self.err(e))?;
        Ok(self.conn.last_insert_rowid())
    }

    fn lens_rows(
        &mut self,
        dict: i64,
        feature: usize,
        side: i64,
        rows: &[(u32, f32)],
    ) -> Result<()> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "INSERT INTO lens (dict, feature, side, rank, token, value) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .map_err(|e| explain(&self.temp, e))?;
        for (rank, &(token, value)) in rows.iter().enumerate() {
            stmt.execute(params![
                dict,
                feature as i64,
                side,
                rank as i64,
                token as i64,
                value as f64
            ])
            .map_err(|e| explain(&self.temp, e))?;
        }
        Ok(())
    }

    /// Each feature of dictionary `dict`'s nearest features in dictionary `other`.
    pub fn nearest(&mut self, dict: i64, other: i64, nearest: &[Vec<(u32, f32)>]) -> Result<()> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "INSERT INTO nearest (dict, feature, other, rank, other_feature, cosine) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .map_err(|e| explain(&self.temp, e))?;
        for (f, best) in nearest.iter().enumerate() {
            for (rank, &(j, c)) in best.iter().enumerate() {
                stmt.execute(params![
                    dict,
                    f as i64,
                    other,
                    rank as i64,
                    j as i64,
                    c as f64
                ])
                .map_err(|e| explain(&self.temp, e))?;
            }
        }
        Ok(())
    }

    pub fn ablation(&mut self, example: i64, a: &Ablation) -> Result<()> {
        insert_ablation(&self.conn, example, a).map_err(|e| self.err(e))
    }

    /// Writes the windows the examples refer to, commits, and moves the file into place.
    pub fn finish(mut self) -> Result<()> {
        let windows = std::mem::take(&mut self.windows);
        {
            let mut stmt = self
                .conn
                .prepare_cached("INSERT INTO windows (id, ids) VALUES (?1, ?2)")
                .map_err(|e| explain(&self.temp, e))?;
            for (id, ids) in &windows {
                stmt.execute(params![*id as i64, blob::from_u32(ids)])
                    .map_err(|e| explain(&self.temp, e))?;
            }
        }
        self.conn.execute_batch("COMMIT").map_err(|e| self.err(e))?;
        let conn = std::mem::replace(
            &mut self.conn,
            Connection::open_in_memory().map_err(|e| explain(&self.temp, e))?,
        );
        conn.close().map_err(|(_, e)| explain(&self.temp, e))?;
        std::fs::rename(&self.temp, &self.path)
            .map_err(|e| InterpError::database(&self.path, format!("moving it into place: {e}")))?;
        Ok(())
    }
}

impl Drop for DatabaseWriter {
    fn drop(&mut self) {
        // After `finish` the file has moved and this does nothing; after an error the
        // partial file is useless.
        let _ = std::fs::remove_file(&self.temp);
    }
}

/// Removes the temporary files that killed writers of `path` left: a file that can be
/// locked has no live writer.
fn remove_stale_partials(path: &Path, name: &str) {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let prefix = format!(".{name}.partial-");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if !entry.file_name().to_string_lossy().starts_with(&prefix) {
            continue;
        }
        if let Ok(file) = std::fs::File::open(entry.path()) {
            if file.try_lock().is_ok() {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// Stores an ablation (also used by the browser for ablations computed on demand).
pub fn insert_ablation(conn: &Connection, example: i64, a: &Ablation) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT OR REPLACE INTO ablations (example, method, base, deltas) VALUES (?1, ?2, ?3, ?4)",
        params![
            example,
            crate::ablation::METHOD,
            a.base as f64,
            blob::from_f32(&a.deltas)
        ],
    )?;
    Ok(())
}
