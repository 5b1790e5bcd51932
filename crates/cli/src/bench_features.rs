//! `saelab bench features`: the feature scan's throughput against the bare forward to the
//! hook plus the encode, on the same tokens in the same run, and the database's size.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use saelab_data::activations::ActivationWindow;
use saelab_data::{Packing, WindowConfig};
use saelab_interp::build::{
    build_database, open_stream, unique_hooks, BuildOptions, Provenance, Source, Stage,
};
use saelab_interp::scan::limit::{next_chunk, FirstTokens};
use saelab_interp::scan::ScanDictionary;
use saelab_sae::contextual::window::AnyDictionary;
use saelab_sae::Dictionary;

use crate::corpus_arg::CorpusArg;
use crate::sae_arg::load_dictionaries;
use crate::ModelArg;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArg,
    #[command(flatten)]
    corpus: CorpusArg,
    /// Dictionary folders (`NAME=DIR` or `DIR`), as for `saelab features`.
    #[arg(long, required = true)]
    sae: Vec<String>,
    /// Window positions to scan.
    #[arg(long, default_value_t = 1_000_000)]
    tokens: u64,
    /// Windows per forward.
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Where the database goes (default: a temporary folder, removed afterwards).
    #[arg(long)]
    db: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<()> {
    if args.tokens == 0 || args.batch == 0 {
        bail!("--tokens and --batch must be positive");
    }
    let loaded = Arc::new(saelab_model::load(args.model.model.as_deref()).context("--model")?);
    let dictionaries = || -> Result<Vec<ScanDictionary>> {
        Ok(load_dictionaries(&args.sae, None, &loaded.model.cfg)?
            .into_iter()
            .map(|d| ScanDictionary {
                name: d.name,
                path: d.path,
                hook: d.hook,
                sae: d.sae.into(),
            })
            .collect())
    };
    let source = || -> Result<Source> {
        Ok(Source::Corpus {
            documents: args.corpus.open()?.documents(),
            window: WindowConfig::for_tokenizer(
                &loaded.tokenizer,
                saelab_data::DEFAULT_WINDOW_LEN,
                Packing::Packed,
            ),
            batch_windows: args.batch,
        })
    };

    // The bare pass: the forward to the hooks, then each dictionary's encode, nothing kept.
    let dicts = dictionaries()?;
    let hooks = unique_hooks(&dicts);
    let (stream, _) = open_stream(&loaded, source()?, &hooks)?;
    let names: Vec<String> = stream
        .layout()
        .hooks
        .iter()
        .map(|h| h.name.clone())
        .collect();
    let start = Instant::now();
    let mut bare_tokens = 0u64;
    let mut chunk: Vec<ActivationWindow> = Vec::with_capacity(args.batch);
    let mut windows = FirstTokens::new(stream, args.tokens);
    while next_chunk(&mut windows, args.batch, &mut chunk)? {
        bare_tokens += chunk
            .iter()
            .map(|w| w.counted().count() as u64)
            .sum::<u64>();
        for d in &dicts {
            let h = names
                .iter()
                .position(|n| *n == d.hook.to_string())
                .unwrap_or(0);
            let x: Vec<f32> = chunk
                .iter()
                .flat_map(|w| w.hooks[h].iter().copied())
                .collect();
            // What the scan computes: features, or a contextual dictionary's window run.
            match &d.sae {
                AnyDictionary::PerPosition(sae) => {
                    std::hint::black_box(sae.encode(&x)?);
                }
                AnyDictionary::Contextual(c) => {
                    std::hint::black_box(c.run_after_start(&x, chunk[0].ids.len())?);
                }
            }
        }
    }
    let bare = start.elapsed().as_secs_f64();
    drop(dicts);

    let temp = tempfile::tempdir()?;
    let db = args
        .db
        .clone()
        .unwrap_or_else(|| temp.path().join("features.db"));
    let features: usize = dictionaries()?.iter().map(|d| d.sae.d_sae()).sum();
    let start = Instant::now();
    let mut scanned = None;
    let summary = build_database(
        &db,
        loaded.clone(),
        source()?,
        dictionaries()?,
        &Provenance {
            model_spec: args.model.model.clone().unwrap_or_default(),
            corpus: args.corpus.corpus.clone(),
        },
        &BuildOptions {
            tokens: Some(args.tokens),
            chunk_windows: args.batch,
            ..BuildOptions::default()
        },
        &mut |stage| {
            if stage == Stage::Scanned {
                scanned = Some(start.elapsed().as_secs_f64());
            }
        },
    )?;
    let total = start.elapsed().as_secs_f64();
    let scan = scanned.unwrap_or(total);
    let bytes = std::fs::metadata(&db)?.len();
    let counted = summary.dictionaries.first().map_or(0, |d| d.1);
    println!(
        "tokens: {} window positions ({} counted: not start or separator)",
        summary.tokens, counted
    );
    println!(
        "bare forward + encode: {bare:.1} s, {:.0} tokens/s",
        summary.tokens as f64 / bare
    );
    println!(
        "features scan:         {scan:.1} s, {:.0} tokens/s ({:.0}% of bare)",
        summary.tokens as f64 / scan,
        100.0 * bare / scan
    );
    println!(
        "whole command:         {total:.1} s (lens, examples, nearest features and the write: {:.1} s)",
        total - scan
    );
    println!(
        "database: {:.1} MB for {features} features ({:.1} KB per feature)",
        bytes as f64 / 1e6,
        bytes as f64 / 1e3 / features.max(1) as f64
    );
    if bare_tokens != counted {
        eprintln!("note: the two passes counted {bare_tokens} and {counted} positions");
    }
    Ok(())
}
