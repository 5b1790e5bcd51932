//! Reading a cache back: shards streamed on a background thread (optionally checking each
//! one's sha256, optionally in a seeded random order) as windows, ready for the same
//! shuffling buffer as live activations.

use std::path::{Path, PathBuf};

use super::manifest::Manifest;
use super::sha256_hex;
use super::shard::ShardReader;
use crate::activations::{Layout, WindowStream};
use crate::error::{DataError, Result};
use crate::shuffle::SplitMix64;

/// Shard chunks the channel may hold ahead of the consumer.
const DEPTH: usize = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardOrder {
    /// As harvested: the windows come in corpus order, exactly as a live stream gives them.
    Stored,
    /// Shards in a seeded random order (for a second pass over the same cache).
    Shuffled(u64),
}

#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// Check every shard's sha256 against the manifest before using it.
    pub verify: bool,
    pub order: ShardOrder,
    /// Windows decoded per chunk handed to the consumer.
    pub chunk_windows: usize,
    /// Start at this window of the cache (in stored order: resuming a run, or a held-out
    /// tail).
    pub skip_windows: u64,
    /// Stop after the window before this one (`None`: the end of the cache).
    pub end_window: Option<u64>,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            verify: true,
            order: ShardOrder::Stored,
            chunk_windows: 32,
            skip_windows: 0,
            end_window: None,
        }
    }
}

pub struct ActivationCache {
    pub dir: PathBuf,
    pub manifest: Manifest,
}

impl ActivationCache {
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        if !Manifest::path(&dir).is_file() {
            return Err(DataError::cache(
                &dir,
                "not an activation cache (no manifest.json); make one with `saelab harvest`",
            ));
        }
        let manifest = Manifest::read(&dir)?;
        Ok(ActivationCache { dir, manifest })
    }

    pub fn layout(&self) -> Layout {
        self.manifest.spec.layout()
    }

    /// The cached windows, streamed.
    pub fn windows(&self, options: ReadOptions) -> WindowStream {
        let (first, end) = (options.skip_windows, options.end_window.unwrap_or(u64::MAX));
        let mut shards: Vec<_> = self
            .manifest
            .shards
            .iter()
            .filter(|s| s.first_window + (s.windows as u64) > first && s.first_window < end)
            .cloned()
            .collect();
        if let ShardOrder::Shuffled(seed) = options.order {
            let mut rng = SplitMix64::new(seed);
            for i in (1..shards.len()).rev() {
                shards.swap(i, rng.below(i as u64 + 1) as usize);
            }
        }
        let dir = self.dir.clone();
        let layout = self.layout();
        let dtype = self.manifest.spec.dtype;
        let chunk = options.chunk_windows.max(1);
        WindowStream::spawn(layout.clone(), DEPTH, move |sink| {
            // Reading and hashing the next shard runs beside decoding this one.
            let (tx, rx) = std::sync::mpsc::sync_channel(1);
            let verify = options.verify;
            let files: Vec<(PathBuf, u64, String)> = shards
                .iter()
                .map(|s| (dir.join(&s.file), s.bytes, s.sha256.clone()))
                .collect();
            let reader_thread = std::thread::spawn(move || {
                for (path, len, sha) in files {
                    let bytes = read_shard(&path, len, verify.then_some(&sha));
                    let failed = bytes.is_err();
                    if tx.send(bytes).is_err() || failed {
                        return;
                    }
                }
            });
            let result = (|| {
                for shard in &shards {
                    let path = dir.join(&shard.file);
                    let Ok(bytes) = rx.recv() else {
                        return Err(DataError::cache(&path, "the shard reader stopped"));
                    };
                    let bytes = bytes?;
                    let reader = ShardReader::new(
                        &path,
                        &bytes,
                        &layout,
                        dtype,
                        shard.first_window,
                        shard.windows,
                    )?;
                    // The part of this shard inside [first, end).
                    let local = |w: u64| w.saturating_sub(shard.first_window) as usize;
                    let mut start = local(first).min(reader.windows());
                    let stop = local(end).min(reader.windows());
                    while start < stop {
                        let end = (start + chunk).min(stop);
                        if !sink.send(reader.read(start..end)) {
                            return Ok(());
                        }
                        start = end;
                    }
                }
                Ok(())
            })();
            drop(rx);
            let _ = reader_thread.join();
            result
        })
    }
}

fn read_shard(path: &Path, expected_len: u64, sha256: Option<&String>) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    if bytes.len() as u64 != expected_len {
        return Err(DataError::cache(
            path,
            format!(
                "{} bytes but the manifest says {expected_len}: the shard is damaged",
                bytes.len()
            ),
        ));
    }
    if let Some(expected) = sha256 {
        let actual = sha256_hex(&bytes);
        if &actual != expected {
            return Err(DataError::cache(
                path,
                format!("sha256 mismatch: the manifest says {expected}, the file has {actual}"),
            ));
        }
    }
    Ok(bytes)
}
