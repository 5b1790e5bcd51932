//! `manifest.json` of an activation cache: what was harvested and how (enough to resume or
//! to refuse a mismatched resume), the shards written so far with their sha256, and the
//! normalisation statistics of every hook.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::dtype::CacheDtype;
use crate::activations::{HookLayout, HookStats, Layout, NormStats};
use crate::error::{DataError, Result};
use crate::windows::WindowConfig;

pub const MANIFEST: &str = "manifest.json";
const FORMAT: &str = "saelab-activations";
const VERSION: u32 = 1;

/// Everything that decides the bytes of the shards. A resume must ask for exactly this.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HarvestSpec {
    pub model: String,
    pub corpus: String,
    pub hooks: Vec<HookLayout>,
    /// Window length, packing and the start, separator and padding tokens.
    pub window: WindowConfig,
    pub dtype: CacheDtype,
    pub windows_per_shard: usize,
    /// Windows per model forward (shards hold a whole number of forwards).
    pub batch_windows: usize,
    /// The harvest stops after this many windows (`None`: the whole corpus).
    pub max_windows: Option<u64>,
    /// Documents shuffled with this seed (through a buffer holding the whole corpus) before
    /// they were cut into windows; `None`: corpus order.
    #[serde(default)]
    pub shuffle_seed: Option<u64>,
}

impl HarvestSpec {
    pub fn layout(&self) -> Layout {
        Layout {
            ctx: self.window.len,
            hooks: self.hooks.clone(),
        }
    }

    /// Names every field where `other` differs (inside `window` too), for a refused resume;
    /// the window count comes last, as it follows from the others (`--tokens` and `--ctx`).
    pub fn first_difference(&self, other: &HarvestSpec) -> Option<String> {
        let (Ok(a), Ok(b)) = (serde_json::to_value(self), serde_json::to_value(other)) else {
            return Some("(unreadable)".into());
        };
        let mut differences: Vec<(bool, String)> = Vec::new();
        let mut compare = |key: String, ours: &serde_json::Value, theirs: &serde_json::Value| {
            if ours != theirs {
                let last = key == "max_windows";
                differences.push((last, format!("{key}: cached {ours}, asked for {theirs}")));
            }
        };
        let null = serde_json::Value::Null;
        for (key, value) in a.as_object().into_iter().flatten() {
            let theirs = b.get(key).unwrap_or(&null);
            match (value, theirs) {
                (serde_json::Value::Object(inner), serde_json::Value::Object(other_inner)) => {
                    for (k, v) in inner {
                        compare(format!("{key}.{k}"), v, other_inner.get(k).unwrap_or(&null));
                    }
                }
                _ => compare(key.clone(), value, theirs),
            }
        }
        differences.sort_by_key(|(last, _)| *last);
        (!differences.is_empty()).then(|| {
            differences
                .into_iter()
                .map(|(_, d)| d)
                .collect::<Vec<_>>()
                .join("; ")
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardEntry {
    pub file: String,
    pub first_window: u64,
    pub windows: usize,
    /// Real, non-special token positions (what token batches draw from).
    pub tokens: u64,
    pub bytes: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    pub spec: HarvestSpec,
    pub complete: bool,
    pub shards: Vec<ShardEntry>,
    /// Per hook, over the real non-special positions written so far.
    pub stats: BTreeMap<String, HookStats>,
    /// The running sums behind `stats`, so that a resumed harvest continues them exactly.
    pub sums: BTreeMap<String, NormStats>,
}

impl Manifest {
    pub fn new(spec: HarvestSpec) -> Self {
        let sums = spec
            .hooks
            .iter()
            .map(|h| (h.name.clone(), NormStats::new(h.d)))
            .collect();
        Manifest {
            format: FORMAT.into(),
            version: VERSION,
            spec,
            complete: false,
            shards: Vec::new(),
            stats: BTreeMap::new(),
            sums,
        }
    }

    pub fn path(dir: &Path) -> PathBuf {
        dir.join(MANIFEST)
    }

    pub fn windows(&self) -> u64 {
        self.shards.iter().map(|s| s.windows as u64).sum()
    }

    pub fn tokens(&self) -> u64 {
        self.shards.iter().map(|s| s.tokens).sum()
    }

    pub fn bytes(&self) -> u64 {
        self.shards.iter().map(|s| s.bytes).sum()
    }

    pub fn read(dir: &Path) -> Result<Manifest> {
        let path = Manifest::path(dir);
        let text = std::fs::read_to_string(&path).map_err(|e| DataError::io(&path, e))?;
        let manifest: Manifest = serde_json::from_str(&text)
            .map_err(|e| DataError::cache(&path, format!("not a valid manifest: {e}")))?;
        if manifest.format != FORMAT || manifest.version != VERSION {
            return Err(DataError::cache(
                &path,
                format!(
                    "format `{}` version {} (this saelab reads `{FORMAT}` version {VERSION})",
                    manifest.format, manifest.version
                ),
            ));
        }
        let layout = manifest.spec.layout();
        layout
            .check()
            .map_err(|e| DataError::cache(&path, format!("field `spec.hooks`: {e}")))?;
        for hook in &layout.hooks {
            if manifest.sums.get(&hook.name).map(NormStats::d) != Some(hook.d) {
                return Err(DataError::cache(
                    &path,
                    format!(
                        "field `sums`: no running sums of width {} for {}",
                        hook.d, hook.name
                    ),
                ));
            }
        }
        Ok(manifest)
    }

    /// Writes to a temporary file in `dir` and renames it into place.
    pub fn write(&self, dir: &Path) -> Result<()> {
        let text = serde_json::to_vec_pretty(self)
            .map_err(|e| DataError::cache(Manifest::path(dir), e.to_string()))?;
        write_atomically(&Manifest::path(dir), &text)
    }

    /// Recomputes `stats` from `sums`.
    pub fn refresh_stats(&mut self) {
        self.stats = self
            .sums
            .iter()
            .filter_map(|(name, sums)| Some((name.clone(), sums.finish()?)))
            .collect();
    }
}

/// Writes `bytes` to a temporary file beside `path`, syncs it and renames it to `path`. On any
/// error the temporary file is removed and `path` is untouched.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let io = |e: std::io::Error| DataError::io(path, e);
    let mut builder = tempfile::Builder::new();
    builder.prefix(".saelab-tmp-");
    // Readable like any other output file (temporary files default to owner-only).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o644));
    }
    let mut tmp = builder.tempfile_in(dir).map_err(io)?;
    tmp.write_all(bytes).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}
