//! `saelab bench batches`: the exact token batches `saelab train` draws from a cache (same
//! held-out split, buffer, seed and batch size), written as one f16 `.npy` array
//! `[steps, batch, d]`, so that another trainer can be run on the same batches in the same
//! order (`reference/sparsify_quality.py`).

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use crate::progress::Progress;
use saelab_train::{Quiet, RunConfig, Source};

#[derive(clap::Args)]
pub struct Args {
    /// A folder written by `saelab harvest`.
    #[arg(long)]
    cache: PathBuf,
    /// The hook to write (default: the cache's first).
    #[arg(long)]
    hook: Option<String>,
    /// As `saelab train --holdout-windows`.
    #[arg(long, default_value_t = 0)]
    holdout_windows: u64,
    /// As `saelab train --tokens` (default: all training tokens).
    #[arg(long)]
    tokens: Option<u64>,
    #[arg(long, default_value_t = 4096)]
    batch: usize,
    #[arg(long, default_value_t = 1024)]
    buffer_mib: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// The `.npy` file to write (replaced atomically).
    #[arg(long)]
    out: PathBuf,
}

pub fn run(args: Args) -> Result<()> {
    let cache = saelab_data::cache::ActivationCache::open(&args.cache)
        .with_context(|| format!("--cache {}", args.cache.display()))?;
    let hook = match args.hook {
        Some(h) => h,
        None => cache.manifest.spec.hooks[0].name.clone(),
    };
    let run: RunConfig = serde_json::from_value(serde_json::json!({
        "cache": args.cache,
        "hooks": [hook],
        "tokens": args.tokens,
        "batch": args.batch,
        "buffer_mib": args.buffer_mib,
        "seed": args.seed,
        "holdout_windows": args.holdout_windows,
        "sae": [],
    }))?;
    let source = Source::open(&run, &mut Quiet)?;
    let steps = source.total_steps(args.batch)?;
    let d = source.hooks[0].1;
    let batches = source.token_batches(&run)?;

    let dir = args.out.parent().filter(|p| !p.as_os_str().is_empty());
    let partial = tempfile::NamedTempFile::new_in(dir.unwrap_or(std::path::Path::new(".")))
        .with_context(|| format!("--out {}", args.out.display()))?;
    let mut file = std::io::BufWriter::new(partial.as_file());
    file.write_all(&npy_header(&[steps as usize, args.batch, d]))?;
    let mut progress = Progress::new("batches", steps);
    let mut written = 0;
    for batch in batches {
        let batch = batch?;
        if written == steps || batch.rows < args.batch {
            break;
        }
        let bytes: Vec<u8> = batch.hooks[0]
            .iter()
            .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
            .collect();
        file.write_all(&bytes)?;
        written += 1;
        progress.inc(1);
    }
    progress.finish();
    if written != steps {
        bail!("the cache gave {written} batches, {steps} expected");
    }
    file.flush()?;
    drop(file);
    // A temporary file is private; the array is an ordinary output.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        partial
            .as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    partial
        .persist(&args.out)
        .with_context(|| format!("--out {}", args.out.display()))?;
    eprintln!(
        "{steps} batches of {} × {d} (f16) in {}",
        args.batch,
        args.out.display()
    );
    Ok(())
}

/// NumPy's format 1.0 header for a little-endian f16 C-order array.
fn npy_header(shape: &[usize]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|n| n.to_string()).collect();
    let dict = format!(
        "{{'descr': '<f2', 'fortran_order': False, 'shape': ({},), }}",
        dims.join(", ")
    );
    let mut header = dict.into_bytes();
    // Magic (6) + version (2) + length (2) + header, padded with spaces to 64 bytes, ending in \n.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(b' ');
    }
    header.push(b'\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(&header);
    out
}
