//! `saelab eval`: every metric of METRICS.md for one or more dictionaries on the first N
//! tokens of a corpus, written as JSON with its parameters, plus a report page.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use saelab_data::{windows, Packing, WindowConfig};
use saelab_eval::tokens::first_tokens;
use saelab_eval::{evaluate, pruned_copies, EvalDictionary, EvalOptions};

use crate::corpus_arg::CorpusArg;
use crate::progress::Progress;
use crate::sae_arg::load_any_dictionaries;
use crate::ModelArg;
use saelab_train::write_atomic;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArg,
    #[command(flatten)]
    corpus: CorpusArg,
    /// A dictionary folder (SAELens, dictionary_learning or sparsify, or a contextual one:
    /// carry, temporal), optionally named: `NAME=DIR`. Repeat for several; one forward
    /// serves all dictionaries of a hook.
    #[arg(long, required = true)]
    sae: Vec<String>,
    /// The hook to evaluate at, for dictionaries whose files do not say (overrides them).
    #[arg(long)]
    hook: Option<String>,
    /// Evaluate the first N tokens of the corpus, in order (window positions, start tokens
    /// included).
    #[arg(long)]
    tokens: u64,
    /// Skip this many windows first: with --shuffle as the harvest had, `--skip-windows W`
    /// starts at the harvest's window W (e.g. a training run's held-out windows, the cache's
    /// last ones).
    #[arg(long, default_value_t = 0)]
    skip_windows: u64,
    /// Shuffle the documents with this seed first, as `saelab harvest --shuffle` does.
    #[arg(long)]
    shuffle: Option<u64>,
    /// Tokens per window.
    #[arg(long, default_value_t = saelab_data::DEFAULT_WINDOW_LEN)]
    ctx: usize,
    /// Documents packed across windows, or one per window padded.
    #[arg(long, default_value = "packed", value_parser = ["packed", "padded"])]
    packing: String,
    /// Windows per model forward.
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Tokens over which dead latents are judged (the first ones evaluated).
    #[arg(long, default_value_t = 1_000_000)]
    dead_window: u64,
    /// Measure reconstruction and sparsity at special-token positions too.
    #[arg(long)]
    include_special: bool,
    /// Seed of the random-perturbation baseline.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Also evaluate each dictionary with its N densest latents removed (their activations
    /// set to 0 before decoding), for each N given: `64` or `64,256,1024`. Density is
    /// measured in a first pass over the evaluated positions; each entry is named
    /// `NAME-pruned-N`.
    #[arg(long, value_name = "N[,N...]", value_delimiter = ',')]
    prune_densest: Vec<usize>,
    /// Where to write the results (JSON).
    #[arg(long)]
    json: PathBuf,
    /// Where to write the report page (default: report.html beside --json).
    #[arg(long)]
    report: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<()> {
    if args.ctx < 2 || args.batch == 0 || args.dead_window == 0 {
        bail!("--ctx must be at least 2, --batch and --dead-window positive");
    }
    // Before the work, so that an unusable --json or --report fails at once.
    let report_path = args
        .report
        .clone()
        .unwrap_or_else(|| parent_or_here(&args.json).join(saelab_report::RUN_REPORT));
    check_outputs(&args.json, &report_path)?;
    let loaded = saelab_model::load(args.model.model.as_deref()).context("--model")?;
    let cfg = &loaded.model.cfg;
    let mut dictionaries = Vec::new();
    for d in load_any_dictionaries(&args.sae, args.hook.as_deref(), cfg)? {
        let entry = EvalDictionary {
            // A transcoder is compared and spliced at its output hook.
            input_hook: d.out_hook.map(|_| d.hook),
            hook: d.out_hook.unwrap_or(d.hook),
            name: d.name,
            path: d.path,
            sae: d.sae,
            prune: None,
        };
        let pruned = pruned_copies(&entry, &args.prune_densest, "--prune-densest")
            .with_context(|| format!("--sae {}", entry.path))?;
        dictionaries.push(entry);
        dictionaries.extend(pruned);
    }

    let corpus = args.corpus.open()?;
    let packing: Packing = args.packing.parse()?;
    let config = WindowConfig::for_tokenizer(&loaded.tokenizer, args.ctx, packing);
    let documents = saelab_data::cache::harvest_documents(&corpus, args.shuffle);
    let stream = windows(documents, &loaded.tokenizer, config).context("--ctx")?;
    let skip = usize::try_from(args.skip_windows).context("--skip-windows")?;
    let eval_windows = first_tokens(stream.skip(skip), args.tokens)
        .with_context(|| format!("--tokens {} of --corpus {}", args.tokens, corpus.name))?;

    let options = EvalOptions {
        include_special: args.include_special,
        dead_window: args.dead_window,
        batch_windows: args.batch,
        random_seed: args.seed,
    };
    let total = eval_windows.len() as u64;
    let mut bar = Progress::new("eval (hook means)", total);
    let mut second = None;
    let start = Instant::now();
    let mut results = evaluate(
        &loaded.model,
        &eval_windows,
        &dictionaries,
        &options,
        &mut |p| {
            if p.pass == 1 {
                bar.set_position(p.windows_done as u64);
            } else {
                let b = second.get_or_insert_with(|| Progress::new("eval", total));
                b.set_position(p.windows_done as u64);
            }
        },
    )?;
    let seconds = start.elapsed().as_secs_f64();
    bar.finish();
    if let Some(b) = second {
        b.finish();
    }
    results.model = loaded.name.clone();
    // Which stretch of the corpus was read, when not its first tokens in order.
    results.corpus = match (args.shuffle, args.skip_windows) {
        (None, 0) => corpus.name.clone(),
        (shuffle, skip) => format!(
            "{} ({}from window {skip})",
            corpus.name,
            shuffle.map_or(String::new(), |s| format!(
                "documents shuffled with seed {s}, "
            ))
        ),
    };
    results.params.tokens_requested = Some(args.tokens);

    let json = serde_json::to_vec_pretty(&results)?;
    write_atomic(&args.json, &json)?;
    print_summary(&results, seconds);
    let report = saelab_report::write_eval_json_report(&args.json, args.report.as_deref())?;
    println!("results: {}", args.json.display());
    println!("report: {}", report.display());
    Ok(())
}

/// The folder of `path` (`.` for a bare file name).
fn parent_or_here(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// Refuses outputs that would fail, or clobber each other, only after the evaluation:
/// a folder, a place that cannot be written, one file named by both flags.
fn check_outputs(json: &Path, report: &Path) -> Result<()> {
    for (flag, path) in [("--json", json), ("--report", report)] {
        let dir = parent_or_here(path);
        std::fs::create_dir_all(dir)
            .with_context(|| format!("{flag}: creating {}", dir.display()))?;
        if path.is_dir() {
            bail!("{flag} {} is a folder; give a file path", path.display());
        }
        let writable = match path.exists() {
            true => std::fs::OpenOptions::new()
                .append(true)
                .open(path)
                .map(drop),
            false => tempfile::NamedTempFile::new_in(dir).map(drop),
        };
        writable.with_context(|| format!("{flag} {}: cannot write there", path.display()))?;
    }
    if canonical(json)? == canonical(report)? {
        bail!(
            "--json {} and --report {} are the same file: the page would replace the results",
            json.display(),
            report.display()
        );
    }
    Ok(())
}

/// `path` with its folder resolved (links, `..`), for a file that may not exist yet.
fn canonical(path: &Path) -> Result<PathBuf> {
    if let Ok(resolved) = path.canonicalize() {
        return Ok(resolved);
    }
    let name = path
        .file_name()
        .with_context(|| format!("{} does not name a file", path.display()))?;
    let dir = parent_or_here(path);
    Ok(dir
        .canonicalize()
        .with_context(|| format!("{}", dir.display()))?
        .join(name))
}

fn print_summary(r: &saelab_eval::EvalResults, seconds: f64) {
    println!(
        "{} tokens ({} windows of {}), {} CE positions, {:.0} tokens/s",
        r.params.positions_evaluated,
        r.params.windows,
        r.params.ctx,
        r.params.ce_positions_counted,
        r.params.positions_evaluated as f64 / seconds
    );
    for h in &r.hooks {
        println!(
            "{}: ce_clean {:.4}  ce_mean {:.4}  ce_zero {:.4}",
            h.hook, h.ce_clean, h.ce_mean, h.ce_zero
        );
    }
    println!(
        "{:<24} {:>8} {:>8} {:>8} {:>9} {:>8} {:>8} {:>9} {:>7}",
        "dictionary", "l0", "fvu", "cossim", "ce_delta", "kl", "kl_rand", "loss_rec", "dead%"
    );
    for d in &r.dictionaries {
        println!(
            "{:<24} {:>8.1} {:>8.4} {:>8.4} {:>9.4} {:>8.4} {:>8.4} {:>9.4} {:>7.2}",
            d.name,
            d.sparsity.l0,
            d.reconstruction.fvu,
            d.reconstruction.cossim,
            d.downstream.ce_delta,
            d.downstream.kl,
            d.downstream.kl_random,
            d.downstream.loss_recovered,
            100.0 - d.sparsity.alive_pct
        );
    }
    for d in &r.dictionaries {
        if let Some(c) = &d.contextual {
            let p = &c.persistence;
            let show = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
            println!(
                "{}: context share {:.3}, codes on {:.1} per position (l0 counts those paid \
                 for), P(stay) median {} and run median {} over {} latents firing {}+ times",
                d.name,
                c.context_share,
                c.l0_on,
                show(p.p_stay_median),
                show(p.mean_run_median),
                p.latents,
                p.min_fires
            );
        }
    }
    println!(
        "dead latents judged over the first {} tokens",
        r.params.dead_window_tokens
    );
}
