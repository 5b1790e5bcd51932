//! `saelab steer`: greedy generation with a direction added at a hook, over a sweep of
//! strengths α, each with its cost (the cross-entropy of a neutral text) and, given target
//! tokens, its effect (their log-probability at the first generated position).
//!
//! The direction comes from one source ([`DirectionSource`]): a dictionary feature's decoder
//! row, a file of values, or the mean difference of the hook's activations between two
//! labelled sets of a corpus's documents (the inference-time-intervention recipe). Another source is one more variant, its flags and its arm of
//! [`DirectionSource::resolve`].

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use saelab_interp::steer::{decoder_direction, Stop};
use saelab_interp::steer_sweep::{sweep, target_tokens, Sweep, SweepRequest};
use saelab_interp::InterpError;
use saelab_model::{HookPoint, LoadedModel};
use saelab_probe::direction::mean_difference;
use saelab_probe::labels::{label_documents, LabelSpec};
use saelab_sae::Dictionary;
use saelab_train::write_atomic;
use serde_json::{json, Value};

use crate::corpus_arg::CorpusArg;
use crate::progress::Progress;
use crate::sae_arg::load_dictionary;
use crate::ModelArg;

/// The built-in neutral text (a macro so that `--help` can quote it).
macro_rules! neutral_text {
    () => {
        "The library opens at nine in the morning and closes at six in the evening. Visitors \
         may borrow up to ten books at a time, and most loans last three weeks. The reading \
         room on the second floor has long wooden tables with a lamp at every seat. Children's \
         books are kept near the entrance, beside a corner with cushions and a few puzzles."
    };
}

const NEUTRAL_TEXT: &str = neutral_text!();

#[derive(clap::Args)]
#[command(group(
    clap::ArgGroup::new("source")
        .required(true)
        .args(["feature", "direction", "mean_diff"])
))]
pub struct Args {
    #[command(flatten)]
    model: ModelArg,
    /// The hook to steer at. With --sae: the hook the dictionary reads, for dictionaries
    /// whose files do not name one (overrides them).
    #[arg(long, required_unless_present = "sae")]
    hook: Option<String>,
    /// A dictionary folder, optionally named (`NAME=DIR`), whose --feature gives the
    /// direction: its decoder row in the hook's units. A transcoder is steered at its output
    /// hook.
    #[arg(long, requires = "feature")]
    sae: Option<String>,
    /// The feature of --sae to steer with.
    #[arg(long, requires = "sae")]
    feature: Option<usize>,
    /// A file holding the direction in the hook's units: a JSON array of numbers, or a
    /// NumPy .npy file of one dimension (float32 or float64).
    #[arg(long, conflicts_with = "sae")]
    direction: Option<PathBuf>,
    /// A binary label of the --corpus documents (FIELD=VALUE[|VALUE...] or contains:WORD, as
    /// `saelab probe` reads labels): the direction is the mean activation at --hook of the
    /// documents with the label minus that of the documents without it (each document's
    /// tokens averaged first).
    #[arg(long, conflicts_with_all = ["sae", "direction"])]
    mean_diff: Option<String>,
    #[command(flatten)]
    corpus: CorpusArg,
    /// With --mean-diff: documents per side, at most (picked by --seed).
    #[arg(long, default_value_t = 200)]
    per_class: usize,
    /// With --mean-diff: tokens read per document, the start token included.
    #[arg(long, default_value_t = 128)]
    ctx: usize,
    /// With --mean-diff: the seed that picks the documents.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Strengths α, comma-separated: α·d is added to the hook's value at every position of
    /// every forward, the prompt's included. With --feature, d is the feature's decoder
    /// direction, so α is in units of the feature's activation (α = 4 pushes as far as the
    /// feature firing at 4); with --direction and --mean-diff, α multiplies the vector as it
    /// is (with --mean-diff, α = 1 moves an average document of one side to the other's mean).
    #[arg(
        long,
        value_delimiter = ',',
        allow_hyphen_values = true,
        value_parser = finite_alpha,
        default_value = "-8,-4,-2,0,2,4,8"
    )]
    alpha: Vec<f32>,
    /// The prompt to continue (read as the corpus windows begin: the start token first).
    #[arg(long)]
    prompt: String,
    /// New tokens per continuation (generation also stops after the end-of-sequence token).
    #[arg(long, default_value_t = 24)]
    max_tokens: usize,
    /// A text file whose next-token cross-entropy measures what steering costs.
    #[arg(
        long,
        long_help = concat!(
            "A text file whose next-token cross-entropy measures what steering costs (mean ",
            "over its tokens, in nats, counted as saelab eval counts CE; a paragraph is ",
            "enough, and at most the model's context is read). Default: this built-in ",
            "paragraph:\n\n",
            neutral_text!()
        )
    )]
    neutral: Option<PathBuf>,
    /// Target tokens, comma-separated token texts (" love, hate" is " love" and " hate";
    /// a leading space is part of a word's token in most vocabularies). Each text's first
    /// token counts; the effect measured is log P(any of them) for the first generated token.
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true)]
    targets: Vec<String>,
    /// Write the sweep as JSON (format "saelab-steer") here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write an HTML page of the sweep here.
    #[arg(long)]
    report: Option<PathBuf>,
}

fn finite_alpha(text: &str) -> Result<f32, String> {
    let v: f32 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number"))?;
    if !v.is_finite() {
        return Err(format!("`{text}` is not a finite number"));
    }
    Ok(v)
}

/// Where the steering direction comes from.
enum DirectionSource {
    /// A dictionary feature's decoder row (`--sae`, `--feature`).
    Feature { sae: String, feature: usize },
    /// Values read from a file (`--direction`).
    File(PathBuf),
    /// The mean difference between a label's two sides (`--mean-diff`, `--corpus`).
    MeanDiff(String),
}

/// A direction ready to add: where, its values, and how to describe it.
struct Direction {
    hook: HookPoint,
    values: Vec<f32>,
    /// The flags that gave it, for messages.
    flags: &'static str,
    /// One line for people.
    label: String,
    /// Its part of the JSON document (`source` and what identifies it).
    description: serde_json::Map<String, Value>,
}

impl DirectionSource {
    fn from_args(args: &Args) -> Result<Self> {
        match (&args.sae, args.feature, &args.direction) {
            (Some(sae), Some(feature), None) => Ok(DirectionSource::Feature {
                sae: sae.clone(),
                feature,
            }),
            (None, None, Some(path)) if args.mean_diff.is_none() => {
                Ok(DirectionSource::File(path.clone()))
            }
            (None, None, None) if args.mean_diff.is_some() => Ok(DirectionSource::MeanDiff(
                args.mean_diff.clone().unwrap_or_default(),
            )),
            _ => bail!(
                "give the direction by --sae DIR --feature I, by --direction FILE, or by \
                 --mean-diff LABEL"
            ),
        }
    }

    fn resolve(&self, loaded: &LoadedModel, args: &Args) -> Result<Direction> {
        let hook = args.hook.as_deref();
        let cfg = &loaded.model.cfg;
        let hook = hook
            .map(|h| HookPoint::parse(h, cfg).context("--hook"))
            .transpose()?;
        match self {
            DirectionSource::Feature { sae, feature } => {
                let dict = load_dictionary(sae, hook, cfg)?;
                if let (Some(asked), Some(own)) = (hook, dict.sae.metadata().hook_name.as_deref()) {
                    if HookPoint::parse(own, cfg).ok() != Some(asked) {
                        bail!(
                            "--sae {sae}: the dictionary reads {own}, not --hook {asked}; drop \
                             --hook to steer where it was trained"
                        );
                    }
                }
                // A transcoder's decoder writes where its prediction lands.
                let at = dict.out_hook.unwrap_or(dict.hook);
                let width = at.width(cfg);
                if dict.sae.d_in() != width {
                    bail!(
                        "--sae {sae}: the dictionary has {} values per token but hook {at} \
                         has {width}",
                        dict.sae.d_in()
                    );
                }
                let d_sae = dict.sae.d_sae();
                if *feature >= d_sae {
                    bail!(
                        "--feature {feature}: the dictionary {} has {d_sae} features \
                         (0 to {})",
                        dict.name,
                        d_sae - 1
                    );
                }
                let mut description = serde_json::Map::new();
                description.insert("source".into(), json!("feature"));
                description.insert("dictionary".into(), json!(dict.name));
                description.insert("path".into(), json!(dict.path));
                description.insert("feature".into(), json!(feature));
                description.insert("d_sae".into(), json!(d_sae));
                description.insert("dictionary_hook".into(), json!(dict.hook.to_string()));
                Ok(Direction {
                    hook: at,
                    values: decoder_direction(&dict.sae, *feature),
                    flags: "--sae/--feature",
                    label: format!("feature {feature} of {}", dict.name),
                    description,
                })
            }
            DirectionSource::File(path) => {
                let Some(hook) = hook else {
                    bail!("--hook is required with --direction");
                };
                let values = read_direction(path)
                    .with_context(|| format!("--direction {}", path.display()))?;
                let width = hook.width(cfg);
                if values.len() != width {
                    bail!(
                        "--direction {}: {} values, but hook {hook} has {width}",
                        path.display(),
                        values.len()
                    );
                }
                let mut description = serde_json::Map::new();
                description.insert("source".into(), json!("file"));
                description.insert("path".into(), json!(path.display().to_string()));
                Ok(Direction {
                    hook,
                    values,
                    flags: "--direction",
                    label: format!("the direction in {}", path.display()),
                    description,
                })
            }
            DirectionSource::MeanDiff(label) => {
                let Some(hook) = hook else {
                    bail!("--hook is required with --mean-diff");
                };
                mean_diff_direction(loaded, args, label, hook)
            }
        }
    }
}

/// The `--mean-diff` direction: class 1's mean activation minus class 0's.
fn mean_diff_direction(
    loaded: &LoadedModel,
    args: &Args,
    label: &str,
    hook: HookPoint,
) -> Result<Direction> {
    let spec: LabelSpec = label.parse().context("--mean-diff")?;
    if matches!(spec, LabelSpec::Field(_)) {
        bail!("--mean-diff {label}: the label must be binary (FIELD=VALUE or contains:WORD)");
    }
    if args.per_class == 0 {
        bail!("--per-class must be at least 1");
    }
    let corpus = args.corpus.open()?;
    let docs = label_documents(corpus.documents(), &[spec], 50_000, false)
        .with_context(|| format!("--mean-diff {label} on --corpus {}", args.corpus.corpus))?
        .balanced(args.per_class, args.seed);
    let mut bar = Progress::new("mean difference (documents)", docs.len() as u64);
    let mut shown = 0;
    let diff = mean_difference(loaded, &docs, hook, args.ctx, 16, &mut |done| {
        bar.inc((done - shown) as u64);
        shown = done;
    })
    .context("--mean-diff")?;
    bar.finish();
    let mut description = serde_json::Map::new();
    description.insert("source".into(), json!("mean_difference"));
    description.insert("label".into(), json!(label));
    description.insert("corpus".into(), json!(corpus.name));
    description.insert("documents".into(), json!(diff.documents));
    description.insert("ctx".into(), json!(args.ctx));
    Ok(Direction {
        hook,
        values: diff.direction,
        flags: "--mean-diff",
        label: format!(
            "the mean difference {label} minus not ({} and {} documents of {})",
            diff.documents[1], diff.documents[0], corpus.name
        ),
        description,
    })
}

pub fn run(args: Args) -> Result<()> {
    let source = DirectionSource::from_args(&args)?;
    let loaded = crate::load(&args.model)?;
    let direction = source.resolve(&loaded, &args)?;
    let (neutral, neutral_source) = match &args.neutral {
        Some(path) => (
            std::fs::read_to_string(path)
                .with_context(|| format!("--neutral {}", path.display()))?,
            path.display().to_string(),
        ),
        None => (NEUTRAL_TEXT.to_string(), "built-in".to_string()),
    };
    // Warned before the sweep: a target that is several tokens counts by its first only.
    let targets = target_tokens(&loaded.tokenizer, &args.targets)
        .map_err(|e| name_flag(e, direction.flags, args.neutral.is_some()))?;
    for t in targets.iter().filter(|t| t.tokens > 1) {
        let first = loaded.tokenizer.decode(&[t.id])?;
        eprintln!(
            "warning: --targets: {:?} is {} tokens; only its first, {first:?}, counts",
            t.text, t.tokens
        );
    }

    let request = SweepRequest {
        hook: direction.hook,
        direction: &direction.values,
        alphas: &args.alpha,
        prompt: &args.prompt,
        max_new: args.max_tokens,
        neutral: &neutral,
        targets: &args.targets,
    };
    let mut bar: Option<Progress> = None;
    let result = sweep(&loaded, &request, &mut |p| {
        bar.get_or_insert_with(|| Progress::new("steer (forwards)", p.total as u64))
            .set_position(p.done as u64);
    });
    if let Some(bar) = bar {
        bar.finish();
    }
    let result = result.map_err(|e| name_flag(e, direction.flags, args.neutral.is_some()))?;
    if result.neutral.ids.len() < result.neutral.encoded {
        eprintln!(
            "warning: the neutral text is {} tokens; only the first {} (the model's context) \
             were read",
            result.neutral.encoded,
            result.neutral.ids.len()
        );
    }

    let doc = document(&loaded, &args, &direction, &result, &neutral_source)?;
    print_table(&args, &direction, &result, &neutral_source)?;
    if let Some(path) = &args.json {
        write_atomic(path, &serde_json::to_vec_pretty(&doc)?)?;
        println!("results: {}", path.display());
    }
    if let Some(path) = &args.report {
        saelab_report::write_steer_report(&doc, path)?;
        println!("report: {}", path.display());
    }
    Ok(())
}

/// A library refusal, named by the flag that gave the value.
fn name_flag(e: InterpError, direction_flags: &str, neutral_file: bool) -> anyhow::Error {
    let InterpError::Invalid { field, message } = &e else {
        return anyhow!(e);
    };
    let flag = match field.as_str() {
        "alpha" => "--alpha",
        "direction" => direction_flags,
        "prompt" => "--prompt/--max-tokens",
        "neutral" if neutral_file => "--neutral",
        "neutral" => "the built-in neutral text",
        "targets" => "--targets",
        _ => return anyhow!(e),
    };
    anyhow!("{flag}: {message}")
}

fn stop_name(stop: Stop) -> &'static str {
    match stop {
        Stop::Length => "length",
        Stop::EndOfSequence => "end-of-sequence",
        Stop::Deadline => "deadline",
    }
}

/// The "saelab-steer" document (version 1).
fn document(
    loaded: &LoadedModel,
    args: &Args,
    direction: &Direction,
    result: &Sweep,
    neutral_source: &str,
) -> Result<Value> {
    let mut described = direction.description.clone();
    described.insert("norm".into(), json!(result.direction_norm));
    let targets = match &result.targets {
        Some(t) => {
            let tokens = t
                .tokens
                .iter()
                .map(|tt| {
                    Ok(json!({
                        "text": tt.text,
                        "id": tt.id,
                        "token": loaded.tokenizer.decode(&[tt.id])?,
                        "tokens": tt.tokens,
                    }))
                })
                .collect::<Result<Vec<_>>>()?;
            json!({ "tokens": tokens, "ids": t.ids, "logprob": t.logprob })
        }
        None => Value::Null,
    };
    let rows: Vec<Value> = result
        .rows
        .iter()
        .map(|r| {
            json!({
                "alpha": r.alpha,
                "continuation": r.continuation.text,
                "ids": r.continuation.ids,
                "stop": stop_name(r.continuation.stop),
                "neutral_ce": r.neutral_ce,
                "neutral_ce_delta": r.neutral_ce_delta,
                "target_logprob": r.target_logprob,
                "target_logprob_shift": r.target_logprob_shift,
            })
        })
        .collect();
    Ok(json!({
        "format": "saelab-steer",
        "version": 1,
        "saelab_version": env!("CARGO_PKG_VERSION"),
        "model": loaded.name,
        "hook": direction.hook.to_string(),
        "direction": described,
        "activation_norm": result.activation_norm,
        "neutral": {
            "source": neutral_source,
            "tokens": result.neutral.ids.len(),
            "encoded": result.neutral.encoded,
            "predicted": result.neutral.predicted,
            "ce": result.neutral.ce,
        },
        "prompt": args.prompt,
        "prompt_ids": result.prompt_ids,
        "max_tokens": args.max_tokens,
        "targets": targets,
        "rows": rows,
    }))
}

fn print_table(
    args: &Args,
    direction: &Direction,
    result: &Sweep,
    neutral_source: &str,
) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "steering {} at {}: ‖d‖ = {:.4}, mean ‖x‖ = {:.4} on the neutral text",
        direction.label, direction.hook, result.direction_norm, result.activation_norm
    )?;
    writeln!(out, "prompt: {:?}", args.prompt)?;
    writeln!(
        out,
        "neutral text: {neutral_source}, {} predictions, CE {:.4} nats at α = 0",
        result.neutral.predicted, result.neutral.ce
    )?;
    if let Some(t) = &result.targets {
        let texts: Vec<String> = t.tokens.iter().map(|tt| format!("{:?}", tt.text)).collect();
        writeln!(
            out,
            "targets: {}, log P = {:.4} at α = 0",
            texts.join(", "),
            t.logprob
        )?;
    }
    writeln!(out)?;
    let with_targets = result.targets.is_some();
    let mut head = format!("{:>8}  {:>10}  {:>8}", "alpha", "neutral CE", "Δ CE");
    if with_targets {
        head.push_str(&format!("  {:>10}", "Δ log P"));
    }
    writeln!(out, "{head}  continuation")?;
    for r in &result.rows {
        let mut line = format!(
            "{:>8}  {:>10.4}  {:>+8.4}",
            r.alpha, r.neutral_ce, r.neutral_ce_delta
        );
        if let Some(shift) = r.target_logprob_shift {
            line.push_str(&format!("  {shift:>+10.4}"));
        }
        let end = match r.continuation.stop {
            Stop::EndOfSequence => " [end]",
            _ => "",
        };
        writeln!(out, "{line}  {:?}{end}", r.continuation.text)?;
    }
    Ok(())
}

/// A direction file: a JSON array of numbers, or a one-dimensional float .npy file.
fn read_direction(path: &Path) -> Result<Vec<f32>> {
    let bytes = std::fs::read(path)?;
    let values = if bytes.starts_with(b"\x93NUMPY") {
        read_npy(&bytes)?
    } else {
        let numbers: Vec<f64> = serde_json::from_slice(&bytes)
            .context("expected a JSON array of numbers or a .npy file")?;
        numbers.into_iter().map(|v| v as f32).collect()
    };
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        bail!("value {i} is {}, not a finite number", values[i]);
    }
    Ok(values)
}

/// The values of a `.npy` file (format versions 1 to 3) holding a one-dimensional
/// little-endian float32 or float64 array.
fn read_npy(bytes: &[u8]) -> Result<Vec<f32>> {
    let short = || anyhow!("the .npy file ends inside its header");
    let major = *bytes.get(6).ok_or_else(short)?;
    let (len, start) = match major {
        1 => (
            u16::from_le_bytes(bytes.get(8..10).ok_or_else(short)?.try_into()?) as usize,
            10,
        ),
        2 | 3 => (
            u32::from_le_bytes(bytes.get(8..12).ok_or_else(short)?.try_into()?) as usize,
            12,
        ),
        v => bail!("unknown .npy format version {v}"),
    };
    let header = std::str::from_utf8(bytes.get(start..start + len).ok_or_else(short)?)?;
    let field = |key: &str| -> Result<&str> {
        let at = header
            .find(&format!("'{key}'"))
            .ok_or_else(|| anyhow!("the .npy header has no '{key}'"))?;
        Ok(header[at + key.len() + 2..]
            .trim_start()
            .trim_start_matches(':')
            .trim_start())
    };
    let descr = field("descr")?;
    let width = if descr.starts_with("'<f4'") {
        4
    } else if descr.starts_with("'<f8'") {
        8
    } else {
        bail!("the .npy array must be little-endian float32 or float64 ('<f4', '<f8')");
    };
    // A one-dimensional array reads the same in C and Fortran order.
    let shape = field("shape")?;
    let inner = shape
        .strip_prefix('(')
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| anyhow!("the .npy header's shape is unreadable"))?;
    let dims: Vec<usize> = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>())
        .collect::<Result<_, _>>()
        .context("the .npy header's shape is unreadable")?;
    let [n] = dims[..] else {
        bail!("the .npy array must have one dimension, not shape {dims:?}");
    };
    let data = &bytes[start + len..];
    if data.len() != n * width {
        bail!(
            "the .npy array holds {} bytes, expected {} for {n} values",
            data.len(),
            n * width
        );
    }
    Ok(match width {
        4 => data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect(),
        _ => data
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")) as f32)
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
        let mut header =
            format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend((header.len() as u16).to_le_bytes());
        out.extend(header.as_bytes());
        out.extend(data);
        out
    }

    #[test]
    fn npy_files_of_one_float_dimension_are_read() {
        let data: Vec<u8> = [1.5f32, -2.0, 0.25]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        assert_eq!(
            read_npy(&npy("<f4", "(3,)", &data)).unwrap(),
            vec![1.5, -2.0, 0.25]
        );
        let data: Vec<u8> = [0.5f64, 4.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(
            read_npy(&npy("<f8", "(2,)", &data)).unwrap(),
            vec![0.5, 4.0]
        );
        let err = read_npy(&npy("<f4", "(1, 3)", &[0; 12])).unwrap_err();
        assert!(err.to_string().contains("one dimension"), "{err}");
        assert!(read_npy(&npy("<i4", "(3,)", &[0; 12])).is_err());
        assert!(read_npy(&npy("<f4", "(4,)", &[0; 12])).is_err());
    }

    #[test]
    fn alphas_must_be_finite_numbers() {
        assert_eq!(finite_alpha(" -2.5"), Ok(-2.5));
        assert!(finite_alpha("nan").is_err());
        assert!(finite_alpha("inf").is_err());
        assert!(finite_alpha("x").is_err());
    }
}
