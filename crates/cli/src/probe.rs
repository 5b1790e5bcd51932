//! `saelab probe`: logistic-regression probes for a label of a corpus's documents on hook
//! activations and dictionary features (all of them, the top k, k random directions), or the
//! XOR experiment for two binary labels.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use saelab_model::HookPoint;
use saelab_probe::collect::{CollectOptions, DictionaryAt, Positions};
use saelab_probe::experiment::ProbeOptions;
use saelab_probe::labels::{label_documents, LabelSpec};
use saelab_probe::lbfgs::LbfgsOptions;
use saelab_probe::logistic::LogisticOptions;
use saelab_probe::run::{study, Stage, Study, StudyOptions};
use saelab_sae::Dictionary;
use saelab_train::write_atomic;

use crate::corpus_arg::CorpusArg;
use crate::progress::Progress;
use crate::sae_arg::load_dictionaries;
use crate::ModelArg;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArg,
    #[command(flatten)]
    corpus: CorpusArg,
    /// The label to probe for: FIELD (one class per value of a document metadata field, e.g.
    /// topic or source), FIELD=VALUE[|VALUE...] (binary), or contains:WORD (binary: the
    /// document's text contains the word).
    #[arg(long, required_unless_present = "xor", conflicts_with = "xor")]
    label: Option<String>,
    /// The XOR experiment: two binary labels A and B; probes for A, B and A XOR B on each
    /// representation and on an additive control.
    #[arg(long, num_args = 2, value_names = ["A", "B"])]
    xor: Option<Vec<String>>,
    /// Hooks whose activations are probed (repeat the flag; default blocks.6.hook_resid_post,
    /// or the dictionaries' hooks).
    #[arg(long)]
    hook: Vec<String>,
    /// Dictionaries whose features are probed too ([NAME=]DIR; repeat the flag). Each must read
    /// one of the --hook hooks where --hook is given.
    #[arg(long)]
    sae: Vec<String>,
    /// The rows probed: mean (each document's tokens averaged), last (its last token), or
    /// tokens (up to --tokens-per-document of its tokens, each with the document's label;
    /// the validation split still keeps every document on one side).
    #[arg(long, default_value = "mean")]
    positions: String,
    #[arg(long, default_value_t = 16)]
    tokens_per_document: usize,
    /// Tokens read per document, its start token included.
    #[arg(long, default_value_t = 128)]
    ctx: usize,
    /// Documents read from the corpus, at most.
    #[arg(long, default_value_t = 50_000)]
    documents: usize,
    /// Documents kept per class (per XOR cell with --xor), picked by --seed: balances the
    /// classes and bounds the work.
    #[arg(long, default_value_t = 400)]
    per_class: usize,
    /// Leave out documents that lack a label's field instead of stopping at the first.
    #[arg(long)]
    skip_missing: bool,
    /// Validation share of each class's documents.
    #[arg(long, default_value_t = 0.25)]
    validation: f64,
    /// Inverse L2 strength (scikit-learn's C) on standardised columns.
    #[arg(long, default_value_t = 1.0)]
    c: f64,
    /// Sparse-probing sizes: the k latents (or dimensions) whose class means differ most.
    #[arg(long, value_delimiter = ',', default_value = "1,2,5,10,20,50")]
    k: Vec<usize>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Documents per forward.
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Write the results as JSON ("saelab-probe").
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write an HTML page of the results (plots of accuracy against k, the XOR table).
    #[arg(long)]
    report: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<()> {
    let specs: Vec<LabelSpec> = match (&args.label, &args.xor) {
        (Some(label), None) => vec![label.parse().context("--label")?],
        (None, Some(pair)) => pair
            .iter()
            .map(|s| s.parse::<LabelSpec>())
            .collect::<std::result::Result<_, _>>()
            .context("--xor")?,
        _ => bail!("give --label or --xor"),
    };
    if let Some(pair) = &args.xor {
        if specs.iter().any(|s| matches!(s, LabelSpec::Field(_))) {
            bail!(
                "--xor {} {}: both labels must be binary (FIELD=VALUE or contains:WORD)",
                pair[0],
                pair[1]
            );
        }
    }
    let mut positions: Positions = args.positions.parse().context("--positions")?;
    if let Positions::Tokens(_) = positions {
        if args.tokens_per_document == 0 {
            bail!("--tokens-per-document must be at least 1");
        }
        positions = Positions::Tokens(args.tokens_per_document);
    }
    if args.per_class == 0 || args.batch == 0 || args.documents == 0 {
        bail!("--per-class, --batch and --documents must be at least 1");
    }
    if !(args.c.is_finite() && args.c > 0.0) {
        bail!("--c {}: must be a positive number", args.c);
    }
    if let Some(k) = args.k.iter().find(|&&k| k == 0) {
        bail!("--k {k}: sizes must be at least 1");
    }
    for (flag, path) in [("--json", &args.json), ("--report", &args.report)] {
        if let Some(p) = path.as_deref().filter(|p| p.is_dir()) {
            bail!("{flag} {} is a folder; give a file path", p.display());
        }
    }

    let loaded = saelab_model::load(args.model.model.as_deref()).context("--model")?;
    let cfg = &loaded.model.cfg;
    let named = load_dictionaries(&args.sae, None, cfg)?;
    let mut hooks: Vec<HookPoint> = args
        .hook
        .iter()
        .map(|h| HookPoint::parse(h, cfg).with_context(|| format!("--hook {h}")))
        .collect::<Result<_>>()?;
    if hooks.is_empty() {
        hooks = named.iter().map(|d| d.hook).collect();
        hooks.dedup();
    }
    if hooks.is_empty() {
        hooks.push(HookPoint::parse("blocks.6.hook_resid_post", cfg)?);
    }
    for d in &named {
        if d.out_hook.is_some() {
            bail!(
                "--sae {}: a transcoder's features are not probed here",
                d.path
            );
        }
        if !hooks.contains(&d.hook) {
            bail!(
                "--sae {}: the dictionary reads {} but the probe reads {} (--hook); add --hook {} \
                 or drop the dictionary",
                d.path,
                d.hook,
                hooks
                    .iter()
                    .map(|h| h.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                d.hook
            );
        }
    }
    let dictionaries: Vec<DictionaryAt<'_>> = named
        .iter()
        .map(|d| DictionaryAt {
            name: d.name.clone(),
            hook: d.hook,
            sae: &d.sae,
        })
        .collect();

    let corpus = args.corpus.open()?;
    let labelled = label_documents(
        corpus.documents(),
        &specs,
        args.documents,
        args.skip_missing,
    )
    .with_context(|| format!("--corpus {}", args.corpus.corpus))?;
    if labelled.skipped_missing > 0 {
        eprintln!(
            "probe: left out {} documents without the label's field (--skip-missing)",
            labelled.skipped_missing
        );
    }
    let docs = labelled.balanced(args.per_class, args.seed);
    eprintln!(
        "probe: {} documents of {} read ({} per {} at most), {}",
        docs.len(),
        labelled.len(),
        args.per_class,
        if specs.len() == 2 {
            "XOR cell"
        } else {
            "class"
        },
        positions
    );
    warn_about_memory(docs.len(), positions, &hooks, &dictionaries, cfg);
    let options = StudyOptions {
        collect: CollectOptions {
            ctx: args.ctx,
            positions,
            batch: args.batch,
            seed: args.seed,
        },
        probe: ProbeOptions {
            logistic: LogisticOptions {
                c: args.c,
                lbfgs: LbfgsOptions::default(),
            },
            ks: args.k.clone(),
            seed: args.seed,
        },
        validation: args.validation,
    };
    let mut bar = Progress::new("reading documents", docs.len() as u64);
    let mut shown = 0;
    let result = study(
        &loaded,
        &corpus.name,
        &docs,
        &hooks,
        &dictionaries,
        &options,
        &mut |stage| match stage {
            Stage::Collecting { done, .. } => {
                bar.inc((done - shown) as u64);
                shown = done;
            }
            Stage::Probing(what) => eprintln!("probe: {what}"),
        },
    )?;
    bar.finish();
    print_study(&result);
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&result)? + "\n";
        write_atomic(path, text.as_bytes()).context("--json")?;
        eprintln!("results: {}", path.display());
    }
    if let Some(path) = &args.report {
        let value = serde_json::to_value(&result)?;
        saelab_report::write_probe_page(&value, path).context("--report")?;
        eprintln!("report: {}", path.display());
    }
    Ok(())
}

/// Rows are held densely (a 16k-latent dictionary's features are 64 KiB a row) and the
/// largest representation is copied to f64 for the fit: say so before a run that would need
/// more than a few GiB.
fn warn_about_memory(
    documents: usize,
    positions: Positions,
    hooks: &[HookPoint],
    dictionaries: &[DictionaryAt<'_>],
    cfg: &saelab_model::ModelConfig,
) {
    let rows = documents
        * match positions {
            Positions::Tokens(n) => n,
            _ => 1,
        };
    let dims: Vec<usize> = hooks
        .iter()
        .map(|h| h.width(cfg))
        .chain(dictionaries.iter().map(|d| d.sae.d_sae()))
        .collect();
    let widest = dims.iter().copied().max().unwrap_or(0);
    let bytes = rows * (dims.iter().sum::<usize>() * 4 + widest * 16);
    let gib = bytes as f64 / f64::from(1u32 << 30);
    if gib > 4.0 {
        eprintln!(
            "warning: about {gib:.1} GiB for {rows} rows of {} values: fewer --per-class or \
             --tokens-per-document need less",
            dims.iter().sum::<usize>()
        );
    }
}

fn print_study(s: &Study) {
    println!(
        "{} documents ({} rows, {} for validation), {}",
        s.documents, s.rows, s.validation_rows, s.positions_text
    );
    for l in &s.labels {
        let counts: Vec<String> = l
            .classes
            .iter()
            .zip(&l.documents)
            .map(|(c, n)| format!("{c} {n}"))
            .collect();
        println!("label {}: {}", l.spec, counts.join(", "));
    }
    if let Some(m) = &s.majority {
        println!("majority class: accuracy {:.3}", m.accuracy);
    }
    if !s.probes.is_empty() {
        println!(
            "{:<32} {:>9} {:>5} {:>9} {:>9} {:>9}",
            "representation", "setting", "k", "accuracy", "macro F1", "train acc"
        );
    }
    for p in &s.probes {
        let k = p.k.map_or("-".to_string(), |k| k.to_string());
        let flag = if p.score.converged {
            ""
        } else {
            "  (not converged)"
        };
        println!(
            "{:<32} {:>9} {:>5} {:>9.3} {:>9.3} {:>9.3}{flag}",
            p.representation,
            p.setting,
            k,
            p.score.accuracy,
            p.score.macro_f1,
            p.score.train_accuracy
        );
    }
    if let Some(cells) = &s.xor_cells {
        println!(
            "XOR cells (a, b): (0,0) {}, (0,1) {}, (1,0) {}, (1,1) {}",
            cells[0][0], cells[0][1], cells[1][0], cells[1][1]
        );
        println!(
            "{:<32} {:>7} {:>7} {:>7}   control: {:>7} {:>7} {:>7}",
            "representation", "a", "b", "a XOR b", "a", "b", "a XOR b"
        );
    }
    for x in &s.xor {
        println!(
            "{:<32} {:>7.3} {:>7.3} {:>7.3}   control: {:>7.3} {:>7.3} {:>7.3}",
            x.representation,
            x.real.a.accuracy,
            x.real.b.accuracy,
            x.real.xor.accuracy,
            x.control.a.accuracy,
            x.control.b.accuracy,
            x.control.xor.accuracy
        );
    }
}
