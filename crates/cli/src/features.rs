//! `saelab features`: one pass over a corpus (or an activation cache) for one or more
//! dictionaries into a feature database that `saelab serve` browses, and optionally that
//! database (or an existing one) exported for another tool.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use saelab_data::{windows, Packing, WindowConfig};
use saelab_interp::build::{build_database, BuildOptions, Provenance, Source, Stage};
use saelab_interp::scan::{ContextSpan, ScanDictionary, ScanOptions};

use crate::corpus_arg::CorpusArg;
use crate::features_export::{self, ExportArgs};
use crate::progress::Progress;
use crate::sae_arg::load_any_dictionaries;
use crate::ModelArg;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArg,
    #[command(flatten)]
    corpus: CorpusArg,
    /// Read activations and token ids from this cache (`saelab harvest`) instead of
    /// running the model over --corpus.
    #[arg(long, conflicts_with = "corpus")]
    cache: Option<PathBuf>,
    /// A dictionary folder, optionally named: `NAME=DIR`. Repeat for several; one forward
    /// (or cache read) serves them all, on one hook or several. A contextual folder (carry,
    /// temporal) runs over each window whole; its examples show the codes that are on.
    #[arg(long, required_unless_present_any = ["export", "proxies"])]
    sae: Vec<String>,
    /// The hook for dictionaries whose files do not name one (overrides them).
    #[arg(long)]
    hook: Option<String>,
    /// The database to write (replaced only with --force); without --sae, the database to
    /// export.
    #[arg(long)]
    db: PathBuf,
    /// Replace an existing database.
    #[arg(long)]
    force: bool,
    /// Scan only the first N window positions (start tokens included); default: all.
    #[arg(long)]
    tokens: Option<u64>,
    /// Tokens per window (corpus only; a cache has its own).
    #[arg(long, default_value_t = saelab_data::DEFAULT_WINDOW_LEN)]
    ctx: usize,
    /// Documents packed across windows, or one per window padded (corpus only).
    #[arg(long, default_value = "packed", value_parser = ["packed", "padded"])]
    packing: String,
    /// Windows per model forward.
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Top activating examples kept per feature.
    #[arg(long, default_value_t = 20)]
    top_k: usize,
    /// Quantile bins B: equal-width bins from 0 past the max (B + 1 to 2B of them).
    #[arg(long, default_value_t = 10)]
    quantile_bins: usize,
    /// Examples sampled uniformly per quantile bin.
    #[arg(long, default_value_t = 5)]
    per_bin: usize,
    /// Tokens of context shown before each example's position.
    #[arg(long, default_value_t = 24)]
    context_before: usize,
    /// Tokens of context shown after it.
    #[arg(long, default_value_t = 4)]
    context_after: usize,
    /// Tokens per side of each feature's logit lens.
    #[arg(long, default_value_t = 20)]
    lens_tokens: usize,
    /// Nearest features kept per feature in each other dictionary.
    #[arg(long, default_value_t = 5)]
    nearest: usize,
    /// Precompute token-ablation attribution for the top N examples of every feature
    /// (one forward per token of context; otherwise the browser computes it on demand).
    #[arg(long, default_value_t = 0)]
    ablate_top: usize,
    /// Count special-token positions (start, separator) too.
    #[arg(long)]
    include_special: bool,
    /// Seed of the quantile sampling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    export: ExportArgs,
    /// Print interpretability proxies of each dictionary in --db as JSON (after the scan,
    /// or without --sae for an existing database): the share of top examples on a feature's
    /// most common token, and the share of features where it is at least half.
    #[arg(long)]
    proxies: bool,
}

pub fn run(args: Args) -> Result<()> {
    let export = args.export.plan()?;
    if args.sae.is_empty() {
        return match (&export, args.proxies) {
            (Some(plan), _) => {
                features_export::run(plan, &args.db)?;
                match args.proxies {
                    true => print_proxies(&args.db),
                    false => Ok(()),
                }
            }
            (None, true) => print_proxies(&args.db),
            (None, false) => bail!("--sae is required unless --export or --proxies is given"),
        };
    }
    if args.sae.len() > 1 && export.as_ref().is_some_and(|p| p.needs_single_dictionary()) {
        bail!("--export with several --sae: name the dictionary to export with --np-dictionary");
    }
    scan(&args)?;
    if let Some(plan) = &export {
        features_export::run(plan, &args.db)?;
    }
    if args.proxies {
        print_proxies(&args.db)?;
    }
    Ok(())
}

fn scan(args: &Args) -> Result<()> {
    check_args(args)?;
    let loaded = Arc::new(saelab_model::load(args.model.model.as_deref()).context("--model")?);
    let cfg = &loaded.model.cfg;
    let dictionaries = load_any_dictionaries(&args.sae, args.hook.as_deref(), cfg)?
        .into_iter()
        .map(|d| ScanDictionary {
            name: d.name,
            path: absolute(&d.path),
            hook: d.hook,
            sae: d.sae,
        })
        .collect::<Vec<_>>();

    let (source, corpus_name) = match &args.cache {
        Some(dir) => {
            let cache = saelab_data::cache::ActivationCache::open(dir)
                .with_context(|| format!("--cache {}", dir.display()))?;
            if cache.manifest.spec.model != loaded.name {
                eprintln!(
                    "warning: the cache was harvested from model `{}`; the lens and live pages \
                     use `{}`",
                    cache.manifest.spec.model, loaded.name
                );
            }
            let name = format!("{} (cache {})", cache.manifest.spec.corpus, dir.display());
            (Source::Cache(dir.clone()), name)
        }
        None => {
            let corpus = args.corpus.open()?;
            let packing: Packing = args.packing.parse()?;
            let window = WindowConfig::for_tokenizer(&loaded.tokenizer, args.ctx, packing);
            // Fails early on a bad window length.
            windows(corpus.documents(), &loaded.tokenizer, window.clone()).context("--ctx")?;
            let source = Source::Corpus {
                documents: corpus.documents(),
                window,
                batch_windows: args.batch,
            };
            (source, corpus.name.clone())
        }
    };
    let options = BuildOptions {
        scan: ScanOptions {
            top_k: args.top_k,
            quantile_bins: args.quantile_bins,
            per_bin: args.per_bin,
            context: ContextSpan {
                before: args.context_before,
                after: args.context_after,
            },
            include_special: args.include_special,
            seed: args.seed,
        },
        tokens: args.tokens,
        lens_tokens: args.lens_tokens,
        nearest: args.nearest,
        ablate_top: args.ablate_top,
        chunk_windows: args.batch,
    };
    let features = dictionaries.iter().map(|d| d.sae.d_sae()).sum();
    options
        .scan
        .check(features)
        .context("--top-k, --quantile-bins, --per-bin, --context-before/after")?;
    let provenance = Provenance {
        model_spec: args
            .model
            .model
            .as_deref()
            .map(absolute)
            .unwrap_or_default(),
        corpus: corpus_name,
    };
    let start = Instant::now();
    let mut scan_bar = Some(Progress::new("features (tokens)", args.tokens.unwrap_or(0)));
    let mut ablate_bar: Option<Progress> = None;
    let summary = build_database(
        &args.db,
        loaded.clone(),
        source,
        dictionaries,
        &provenance,
        &options,
        &mut |stage| match stage {
            Stage::Scan { tokens, .. } => {
                if let Some(bar) = scan_bar.as_mut() {
                    bar.set_position(tokens);
                }
            }
            Stage::Scanned => {
                if let Some(bar) = scan_bar.take() {
                    bar.finish();
                }
                eprintln!("scanned; writing the logit lens and examples");
            }
            Stage::Ablate { done, total } => {
                if let Some(bar) = scan_bar.take() {
                    bar.finish();
                }
                ablate_bar
                    .get_or_insert_with(|| Progress::new("ablations (features)", total))
                    .set_position(done);
            }
            Stage::Write => {
                if let Some(bar) = scan_bar.take() {
                    bar.finish();
                }
                if let Some(bar) = ablate_bar.take() {
                    bar.finish();
                }
                eprintln!("writing nearest features and the database");
            }
        },
    )
    .with_context(|| format!("building the feature database {}", args.db.display()))?;
    let seconds = start.elapsed().as_secs_f64();
    let mut lines = vec![format!(
        "{} tokens in {:.0} s ({:.0} tokens/s)",
        summary.tokens,
        seconds,
        summary.tokens as f64 / seconds
    )];
    for (name, positions, l0) in &summary.dictionaries {
        lines.push(format!("{name}: {positions} positions counted, L0 {l0:.1}"));
    }
    lines.push(format!("database: {}", args.db.display()));
    lines.push(format!("browse it: saelab serve {}", args.db.display()));
    for line in lines {
        // With --proxies, stdout is theirs alone (JSON to pipe on).
        match args.proxies {
            true => eprintln!("{line}"),
            false => println!("{line}"),
        }
    }
    Ok(())
}

fn check_args(args: &Args) -> Result<()> {
    if args.db.is_dir() {
        bail!(
            "--db {}: is a folder, not a database file",
            args.db.display()
        );
    }
    if args.db.exists() && !args.force {
        bail!(
            "--db {}: the file exists; pass --force to replace it",
            args.db.display()
        );
    }
    if let Some(dir) = args.db.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("--db: creating {}", dir.display()))?;
    }
    if args.ctx < 2 || args.batch == 0 {
        bail!("--ctx must be at least 2 and --batch positive");
    }
    if args.tokens == Some(0) {
        bail!("--tokens must be at least 1");
    }
    Ok(())
}

/// A path made absolute, so the database finds it from any working directory; other
/// strings (hub ids) unchanged.
fn absolute(spec: &str) -> String {
    let p = Path::new(spec);
    match std::fs::canonicalize(p) {
        Ok(abs) if p.exists() => abs.display().to_string(),
        _ => spec.to_string(),
    }
}

/// `--proxies`: the token-concentration proxies of every dictionary in `db`, as JSON.
fn print_proxies(db: &std::path::Path) -> Result<()> {
    let (conn, _) = saelab_interp::db::open(db, saelab_interp::db::Access::ReadOnly)?;
    let proxies = saelab_interp::proxies::token_concentration(&conn, db)?;
    println!("{}", serde_json::to_string_pretty(&proxies)?);
    Ok(())
}
