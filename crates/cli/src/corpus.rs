//! `saelab corpus`: what a corpus holds (documents, bytes, and with --stats tokens and
//! windows), source by source.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use saelab_data::{windows, Corpus, Packing, Source, WindowConfig};

use crate::corpus_arg::CorpusArg;
use crate::progress::Progress;
use crate::ModelArg;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    corpus: CorpusArg,
    /// Also tokenize: token and window counts (loads the model's tokenizer).
    #[arg(long)]
    stats: bool,
    #[command(flatten)]
    model: ModelArg,
    /// Tokens per window, for --stats.
    #[arg(long, default_value_t = saelab_data::DEFAULT_WINDOW_LEN)]
    ctx: usize,
    /// Documents packed across windows, or one per window padded, for --stats.
    #[arg(long, default_value = "packed", value_parser = ["packed", "padded"])]
    packing: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Default, serde::Serialize)]
struct Counts {
    source: String,
    documents: u64,
    bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    windows: Option<u64>,
}

pub fn run(args: Args) -> Result<()> {
    let corpus = args.corpus.open()?;
    let tokenizer = match args.stats {
        true => Some(
            saelab_model::load(args.model.model.as_deref())
                .context("--model")?
                .tokenizer,
        ),
        false => None,
    };
    let packing: Packing = args.packing.parse()?;
    let mut rows = Vec::new();
    for source in &corpus.sources {
        let one = Corpus {
            name: label(source, &corpus),
            sources: vec![source.clone()],
            skipped: Vec::new(),
        };
        let total_bytes = one
            .files()
            .iter()
            .filter_map(|f| std::fs::metadata(f).ok())
            .map(|m| m.len())
            .sum();
        let mut progress = Progress::new(&format!("reading {}", one.name), total_bytes);
        let documents = Arc::new(AtomicU64::new(0));
        let bytes = Arc::new(AtomicU64::new(0));
        let (d, b) = (documents.clone(), bytes.clone());
        let docs = Box::new(one.documents().inspect(move |doc| {
            if let Ok(doc) = doc {
                d.fetch_add(1, Ordering::Relaxed);
                b.fetch_add(doc.text.len() as u64, Ordering::Relaxed);
            }
        }));
        let mut counts = Counts {
            source: one.name.clone(),
            ..Default::default()
        };
        match &tokenizer {
            None => {
                for doc in docs {
                    let doc = doc.with_context(|| format!("--corpus {}", args.corpus.corpus))?;
                    progress.inc(doc.text.len() as u64);
                }
            }
            Some(tok) => {
                let config = WindowConfig::for_tokenizer(tok, args.ctx, packing);
                let mut stream = windows(docs, tok, config).context("--ctx")?;
                let (mut n, mut shown) = (0u64, 0u64);
                for w in stream.by_ref() {
                    w.with_context(|| format!("--corpus {}", args.corpus.corpus))?;
                    n += 1;
                    let read = bytes.load(Ordering::Relaxed);
                    progress.inc(read - shown);
                    shown = read;
                }
                counts.tokens = Some(stream.tokens_read());
                counts.windows = Some(n);
            }
        }
        progress.finish();
        counts.documents = documents.load(Ordering::Relaxed);
        counts.bytes = bytes.load(Ordering::Relaxed);
        rows.push(counts);
    }
    print(&rows, args.json)
}

/// A short name for one source: the default corpus's source names, else the path.
fn label(source: &Source, corpus: &Corpus) -> String {
    match source {
        _ if corpus.sources.len() == 1 => corpus.name.clone(),
        Source::Jsonl { files, .. } if files.len() == 1 => files[0]
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
        other => other
            .files()
            .first()
            .map(|f| f.display().to_string())
            .unwrap_or_default(),
    }
}

fn print(rows: &[Counts], json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(rows)?);
        return Ok(());
    }
    let stats = rows.iter().any(|r| r.tokens.is_some());
    let mut header = format!("{:<24} {:>10} {:>12}", "source", "documents", "bytes");
    if stats {
        header.push_str(&format!(" {:>12} {:>10}", "tokens", "windows"));
    }
    println!("{header}");
    let total = Counts {
        source: "total".into(),
        documents: rows.iter().map(|r| r.documents).sum(),
        bytes: rows.iter().map(|r| r.bytes).sum(),
        tokens: stats.then(|| rows.iter().filter_map(|r| r.tokens).sum()),
        windows: stats.then(|| rows.iter().filter_map(|r| r.windows).sum()),
    };
    let shown: Vec<&Counts> = match rows.len() {
        1 => rows.iter().collect(),
        _ => rows.iter().chain(std::iter::once(&total)).collect(),
    };
    for r in shown {
        let mut line = format!("{:<24} {:>10} {:>12}", r.source, r.documents, r.bytes);
        if let (Some(t), Some(w)) = (r.tokens, r.windows) {
            line.push_str(&format!(" {t:>12} {w:>10}"));
        }
        println!("{line}");
    }
    Ok(())
}
