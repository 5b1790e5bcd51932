//! The `saelab` command line: thin verbs over the libraries.

mod activations;
mod bench;
mod bench_batches;
mod bench_cache;
mod bench_contextual;
mod bench_features;
mod corpus;
mod corpus_arg;
mod eval;
mod features;
mod features_export;
mod harvest;
mod probe;
mod progress;
mod report;
mod sae_arg;
mod serve;
mod steer;
mod train;
mod train_contextual;
mod train_e2e;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use saelab_model::hooks::HookPoint;

#[derive(Parser)]
#[command(
    name = "saelab",
    version,
    about = "Sparse dictionary learning for language-model activations"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
struct ModelArg {
    /// A GGUF file, a Hugging Face model folder, or a hub id (default: the embedded SmolLM2-135M-Instruct).
    #[arg(long)]
    model: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// List the model's hook points with their shapes.
    Hooks {
        #[command(flatten)]
        model: ModelArg,
    },
    /// Print the token ids of a text as one JSON array, as the model's tokenizer encodes it.
    Tokenize {
        #[command(flatten)]
        model: ModelArg,
        /// The text to encode.
        #[arg(long)]
        text: String,
    },
    /// Print the greedy continuation of a prompt.
    Generate {
        #[command(flatten)]
        model: ModelArg,
        #[arg(long)]
        prompt: String,
        /// Number of new tokens (generation also stops after the end-of-sequence token).
        #[arg(long, default_value_t = 32)]
        max_tokens: usize,
    },
    /// Summary statistics of hook activations over a text file.
    Activations(activations::Args),
    /// Document, byte, token and window counts of a corpus.
    Corpus(corpus::Args),
    /// Write activations of hook points over a corpus to a disk cache (resumable).
    Harvest(harvest::Args),
    /// Train dictionaries (several at once) on activations, live or from a cache.
    Train(train::Args),
    /// Train dictionaries end to end: against the model's KL (or CE) with their
    /// reconstruction spliced in, from scratch or from a trained dictionary.
    #[command(name = "train-e2e")]
    TrainE2e(train_e2e::Args),
    /// Train contextual dictionaries (carry, temporal) on whole windows of a cache, beside
    /// per-position dictionaries on the same windows.
    #[command(name = "train-contextual")]
    TrainContextual(train_contextual::Args),
    /// Evaluate dictionaries: reconstruction, sparsity, spliced CE/KL and baselines.
    Eval(eval::Args),
    /// Build a feature database: examples, logit lens, nearest features (browse with serve).
    Features(features::Args),
    /// Write the HTML report of a training run folder or an eval file.
    Report(report::Args),
    /// Browse a feature database in a local web app (prints its URL).
    Serve(serve::Args),
    /// Linear probes on activations and dictionary features: labels from a corpus, sparse
    /// probing, the XOR experiment.
    Probe(probe::Args),
    /// Generate with a direction added at a hook, over a sweep of strengths.
    Steer(steer::Args),
    /// Speed benchmarks.
    #[command(subcommand)]
    Bench(bench::Bench),
}

/// mimalloc's `mi_option_purge_delay` (index 15 of its option enum in both v2 and v3).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() -> ExitCode {
    // Keep freed memory mapped: a forward frees and reallocates the same large buffers in
    // every layer, and returning them to the OS costs a page fault and a zeroing per page
    // each time (full forward 345 → 403 tokens/s when measured).
    // SAFETY: setting an option has no preconditions.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    // candle captures a backtrace into every error when RUST_BACKTRACE is set (as it often
    // is in CI), and its message then prints some 50 lines of frames. RUST_LIB_BACKTRACE
    // governs such captures ahead of RUST_BACKTRACE, which still applies to panics.
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // SAFETY: no other thread exists yet to read the environment concurrently.
        unsafe { std::env::set_var("RUST_LIB_BACKTRACE", "0") };
    }
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        // A reader that stops early (`saelab hooks | head`) is not an error.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) if e.is::<train::Interrupted>() => {
            eprintln!("{e}");
            ExitCode::from(130)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Hooks { model } => {
            let loaded = load(&model)?;
            let cfg = &loaded.model.cfg;
            let mut out = std::io::stdout().lock();
            for point in HookPoint::all(cfg) {
                writeln!(out, "{:<36} {}", point.to_string(), point.shape(cfg))?;
            }
        }
        Command::Tokenize { model, text } => {
            let loaded = load(&model)?;
            let ids = loaded.tokenizer.encode(&text).context("--text")?;
            println!("{}", serde_json::to_string(&ids)?);
        }
        Command::Generate {
            model,
            prompt,
            max_tokens,
        } => {
            let loaded = load(&model)?;
            let ids = loaded.tokenizer.encode(&prompt).context("--prompt")?;
            let new = loaded
                .model
                .generate_greedy(&ids, max_tokens, loaded.tokenizer.eos_id())
                .context("--prompt")?;
            let mut out = std::io::stdout().lock();
            out.write_all(loaded.tokenizer.decode(&new)?.as_bytes())?;
            out.flush()?;
        }
        Command::Activations(args) => activations::run(args)?,
        Command::Corpus(args) => corpus::run(args)?,
        Command::Harvest(args) => harvest::run(args)?,
        Command::Train(args) => train::run(args)?,
        Command::TrainE2e(args) => train_e2e::run(args)?,
        Command::TrainContextual(args) => train_contextual::run(args)?,
        Command::Eval(args) => eval::run(args)?,
        Command::Features(args) => features::run(args)?,
        Command::Report(args) => report::run(args)?,
        Command::Serve(args) => serve::run(args)?,
        Command::Probe(args) => probe::run(args)?,
        Command::Steer(args) => steer::run(args)?,
        Command::Bench(b) => bench::run(b)?,
    }
    Ok(())
}

fn load(model: &ModelArg) -> Result<saelab_model::LoadedModel> {
    let loaded = saelab_model::load(model.model.as_deref()).context("--model")?;
    Ok(loaded)
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
