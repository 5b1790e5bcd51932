//! `saelab bench cache`: read throughput of an activation cache, from disk bytes to f32
//! windows, and on to shuffled token batches as a trainer would get them.

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use saelab_data::activations::{ActivationBuffer, BatchShape, BufferConfig};
use saelab_data::cache::{ActivationCache, ReadOptions};

pub fn run(dir: &Path, batch: usize, buffer_mib: usize, verify: bool) -> Result<()> {
    if batch == 0 || buffer_mib == 0 {
        bail!("--batch and --buffer-mib must be positive");
    }
    let cache = ActivationCache::open(dir).with_context(|| format!("--cache {}", dir.display()))?;
    let disk_bytes = cache.manifest.bytes() as f64;
    let options = ReadOptions {
        verify,
        ..ReadOptions::default()
    };

    let start = Instant::now();
    let mut positions = 0u64;
    for window in cache.windows(options.clone()) {
        positions += window?.ids.len() as u64;
    }
    let windows_s = start.elapsed().as_secs_f64();
    let row = cache.layout().row_len() as f64;

    let config = BufferConfig {
        bytes: buffer_mib
            .checked_mul(1 << 20)
            .with_context(|| format!("--buffer-mib {buffer_mib} overflows"))?,
        shape: BatchShape::Tokens(batch),
        seed: 0,
        include_special: false,
    };
    let start = Instant::now();
    let mut tokens = 0u64;
    for b in ActivationBuffer::new(cache.windows(options), config).context("--buffer-mib")? {
        tokens += b?.rows as u64;
    }
    let batches_s = start.elapsed().as_secs_f64();

    let gb = |bytes: f64, s: f64| bytes / s / 1e9;
    println!(
        "{}",
        serde_json::json!({
            "cache": dir,
            "dtype": cache.manifest.spec.dtype.name(),
            "verify_sha256": verify,
            "disk_bytes": disk_bytes,
            "windows": {
                "seconds": windows_s,
                "disk_gb_per_s": gb(disk_bytes, windows_s),
                "f32_gb_per_s": gb(positions as f64 * row * 4.0, windows_s),
                "positions_per_s": positions as f64 / windows_s,
            },
            "token_batches": {
                "batch": batch,
                "buffer_mib": buffer_mib,
                "seconds": batches_s,
                "tokens_per_s": tokens as f64 / batches_s,
                "f32_gb_per_s": gb(tokens as f64 * row * 4.0, batches_s),
            },
        })
    );
    Ok(())
}
