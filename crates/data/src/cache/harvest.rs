//! Harvesting: the model's activations over a corpus written to shards, with the manifest
//! updated after each shard so that a killed harvest resumes at the first missing shard and
//! ends with the same files as one never interrupted.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use saelab_model::{HookPoint, LoadedModel};

use super::dtype::CacheDtype;
use super::manifest::{write_atomically, HarvestSpec, Manifest, ShardEntry, MANIFEST};
use super::sha256_hex;
use super::shard::{shard_file_name, ShardBuilder};
use crate::activations::{live_windows, ActivationWindow, HookLayout, LiveSpec};
use crate::corpus::Corpus;
use crate::document::Documents;
use crate::error::{DataError, Result};
use crate::shuffle::shuffle_documents;
use crate::windows::{Packing, WindowConfig};

/// How to harvest, in the terms of `saelab harvest`'s flags.
#[derive(Debug, Clone)]
pub struct HarvestSettings {
    /// Stop after this many tokens, rounded up to whole windows (`None`: the whole corpus).
    pub tokens: Option<u64>,
    pub ctx: usize,
    pub packing: Packing,
    pub dtype: CacheDtype,
    /// Windows per model forward.
    pub batch: usize,
    /// Tokens per shard, rounded down to whole forwards (at least one).
    pub shard_tokens: usize,
    /// Shuffle the documents with this seed before cutting windows.
    pub shuffle: Option<u64>,
}

impl HarvestSpec {
    /// The spec of harvesting `hooks` of `model` over the corpus named `corpus`.
    pub fn for_model(
        model: &LoadedModel,
        corpus: &str,
        hooks: &[String],
        settings: &HarvestSettings,
    ) -> Result<HarvestSpec> {
        let cfg = &model.model.cfg;
        let hooks = hooks
            .iter()
            .map(|name| {
                let point = HookPoint::parse(name, cfg)?;
                Ok(HookLayout {
                    name: point.to_string(),
                    d: point.width(cfg),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let (ctx, batch) = (settings.ctx.max(1), settings.batch.max(1));
        let forwards_per_shard = (settings.shard_tokens / ctx).div_ceil(batch).max(1);
        Ok(HarvestSpec {
            model: model.name.clone(),
            corpus: corpus.to_string(),
            hooks,
            window: WindowConfig::for_tokenizer(&model.tokenizer, settings.ctx, settings.packing),
            dtype: settings.dtype,
            windows_per_shard: forwards_per_shard * batch,
            batch_windows: settings.batch,
            max_windows: settings.tokens.map(|t| t.div_ceil(ctx as u64)),
            shuffle_seed: settings.shuffle,
        })
    }
}

/// The corpus's documents as a harvest with `shuffle` reads them.
pub fn harvest_documents(corpus: &Corpus, shuffle: Option<u64>) -> Documents {
    match shuffle {
        Some(seed) => shuffle_documents(corpus.documents(), seed, usize::MAX),
        None => corpus.documents(),
    }
}

/// A harvest to run: what to write and where.
pub struct Harvest {
    pub spec: HarvestSpec,
    pub points: Vec<HookPoint>,
    pub dir: PathBuf,
}

impl Harvest {
    /// Checks the spec against the model and resolves the hook names.
    pub fn new(model: &LoadedModel, spec: HarvestSpec, dir: impl Into<PathBuf>) -> Result<Self> {
        let cfg = &model.model.cfg;
        spec.layout().check()?;
        let points = spec
            .hooks
            .iter()
            .map(|h| {
                let point = HookPoint::parse(&h.name, cfg)?;
                if point.width(cfg) != h.d {
                    return Err(DataError::invalid(
                        "hook",
                        format!("{} has width {}, not {}", h.name, point.width(cfg), h.d),
                    ));
                }
                Ok(point)
            })
            .collect::<Result<Vec<_>>>()?;
        if spec.batch_windows == 0 || spec.windows_per_shard == 0 {
            return Err(DataError::invalid(
                "shard size",
                "windows per shard and per forward must be positive",
            ));
        }
        if !spec.windows_per_shard.is_multiple_of(spec.batch_windows) {
            return Err(DataError::invalid(
                "shard size",
                format!(
                    "{} windows per shard is not a multiple of {} windows per forward",
                    spec.windows_per_shard, spec.batch_windows
                ),
            ));
        }
        Ok(Harvest {
            spec,
            points,
            dir: dir.into(),
        })
    }
}

/// Runs (or resumes, or finds already complete) `harvest` over `documents`. `progress` is
/// called with the number of windows in the cache after every forward; when it returns false
/// the harvest stops there with `DataError::Stopped`.
pub fn harvest(
    model: Arc<LoadedModel>,
    documents: Documents,
    harvest: &Harvest,
    progress: &mut dyn FnMut(u64) -> bool,
) -> Result<Manifest> {
    let dir = harvest.dir.as_path();
    let mut manifest = open_or_start(dir, &harvest.spec)?;
    if manifest.complete {
        let _ = progress(manifest.windows());
        return Ok(manifest);
    }
    remove_leftovers(dir, &manifest)?;
    manifest.write(dir)?;
    let spec = &harvest.spec;
    let done = manifest.windows();
    let _ = progress(done);
    let stream = live_windows(
        model,
        documents,
        LiveSpec {
            points: harvest.points.clone(),
            window: spec.window.clone(),
            batch_windows: spec.batch_windows,
            max_windows: spec.max_windows,
            skip_windows: done,
        },
    )?;
    let layout = spec.layout();
    let mut shard = ShardBuilder::new(&layout, spec.dtype, done);
    for window in stream {
        let window = window?;
        add_stats(&mut manifest, &window);
        shard.push(&window);
        if shard.windows == spec.windows_per_shard {
            let next = ShardBuilder::new(&layout, spec.dtype, window.index + 1);
            commit(dir, &mut manifest, std::mem::replace(&mut shard, next))?;
        }
        if (window.index + 1).is_multiple_of(spec.batch_windows as u64)
            && !progress(window.index + 1)
        {
            // The shard being filled is dropped; a rerun resumes after the committed ones.
            return Err(DataError::Stopped {
                dir: dir.to_path_buf(),
                windows: manifest.windows(),
            });
        }
    }
    if shard.windows > 0 {
        commit(dir, &mut manifest, shard)?;
    }
    if manifest.windows() == 0 {
        return Err(DataError::Empty {
            what: format!("{}: no token windows to harvest", spec.corpus),
        });
    }
    manifest.complete = true;
    manifest.refresh_stats();
    manifest.write(dir)?;
    let _ = progress(manifest.windows());
    Ok(manifest)
}

fn open_or_start(dir: &Path, spec: &HarvestSpec) -> Result<Manifest> {
    std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
    let path = Manifest::path(dir);
    if path.exists() {
        let manifest = Manifest::read(dir)?;
        // A harvest that stopped before its first shard left nothing worth keeping.
        if manifest.shards.is_empty() && !manifest.complete {
            return Ok(Manifest::new(spec.clone()));
        }
        if let Some(difference) = manifest.spec.first_difference(spec) {
            return Err(DataError::cache(
                &path,
                format!(
                    "this cache was harvested with other settings ({difference}); choose \
                     another output folder or remove this one"
                ),
            ));
        }
        return Ok(manifest);
    }
    let foreign = std::fs::read_dir(dir)
        .map_err(|e| DataError::io(dir, e))?
        .filter_map(|e| e.ok())
        .find(|e| !is_ours(&e.file_name().to_string_lossy()));
    if let Some(entry) = foreign {
        return Err(DataError::cache(
            dir,
            format!(
                "the folder holds {} but no {MANIFEST}: refusing to write an activation cache \
                 into a folder used for something else",
                entry.file_name().to_string_lossy()
            ),
        ));
    }
    Ok(Manifest::new(spec.clone()))
}

/// Files a harvest may leave behind: shards and temporary files.
fn is_ours(name: &str) -> bool {
    name.starts_with(".saelab-tmp-")
        || (name.starts_with("shard_") && name.ends_with(".safetensors"))
}

/// Deletes temporary files of a killed run and shards the manifest does not list (written
/// just before a kill, before the manifest was updated); checks the listed ones are whole.
fn remove_leftovers(dir: &Path, manifest: &Manifest) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))? {
        let entry = entry.map_err(|e| DataError::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let listed = manifest.shards.iter().any(|s| s.file == name);
        if is_ours(&name) && !listed {
            std::fs::remove_file(entry.path()).map_err(|e| DataError::io(entry.path(), e))?;
        }
    }
    for shard in &manifest.shards {
        let path = dir.join(&shard.file);
        let len = std::fs::metadata(&path)
            .map_err(|e| DataError::io(&path, e))?
            .len();
        if len != shard.bytes {
            return Err(DataError::cache(
                &path,
                format!(
                    "{len} bytes but the manifest says {}: the cache is damaged; remove the \
                     folder and harvest again",
                    shard.bytes
                ),
            ));
        }
    }
    Ok(())
}

fn add_stats(manifest: &mut Manifest, window: &ActivationWindow) {
    let hooks = &manifest.spec.hooks;
    for (hook, values) in hooks.iter().zip(&window.hooks) {
        let Some(sums) = manifest.sums.get_mut(&hook.name) else {
            continue;
        };
        for t in window.counted() {
            sums.add(&values[t * hook.d..(t + 1) * hook.d]);
        }
    }
}

/// Writes the shard, then the manifest listing it: a shard is in the cache only once both
/// are on disk.
fn commit(dir: &Path, manifest: &mut Manifest, shard: ShardBuilder) -> Result<()> {
    let file = shard_file_name(manifest.shards.len());
    let bytes = shard.to_bytes()?;
    write_atomically(&dir.join(&file), &bytes)?;
    manifest.shards.push(ShardEntry {
        file,
        first_window: shard.first_window,
        windows: shard.windows,
        tokens: shard.tokens,
        bytes: bytes.len() as u64,
        sha256: sha256_hex(&bytes),
    });
    manifest.refresh_stats();
    if let Err(e) = manifest.write(dir) {
        // Not listed, so not part of the cache: do not leave it looking like it is.
        let _ = std::fs::remove_file(dir.join(&manifest.shards[manifest.shards.len() - 1].file));
        manifest.shards.pop();
        return Err(e);
    }
    Ok(())
}
