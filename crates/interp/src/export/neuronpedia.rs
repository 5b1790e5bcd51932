//! One dictionary of a feature database in the layout Neuronpedia imports: the batch files
//! SAEDashboard's Neuronpedia runner writes (`batch-{n}.json`, features in index order)
//! and `skipped_indexes.json` for the features that never fired.
//!
//! What each field holds here:
//! - `pos_str`/`pos_values`, `neg_str`/`neg_values`: the logit lens, most promoted and
//!   most suppressed first, as stored.
//! - `frac_nonzero`: the feature's density over the counted positions.
//! - `freq_hist_data_bar_values`/`_heights`: the stored activation histogram, trimmed to
//!   its first and last nonzero bins; the bins are log-spaced, so the values are the
//!   bins' geometric centres.
//! - `logits_hist_data_bar_*`: empty. The database keeps only each side's top tokens of
//!   the lens, not the logits over the whole vocabulary a histogram needs.
//! - `activations`: the top examples (`bin_min` -1, `bin_max` the feature's maximum,
//!   `bin_contains` -1), then the quantile bins from the highest down, each with `lo`,
//!   `hi` and the fraction of counted positions whose activation fell in it.
//! - Neuron alignment, correlated neurons and features, and decoder weight distributions
//!   are not computed: empty lists, present because the importer reads every key.
//!
//! Activations and logit values are rounded to 3 decimals, as SAEDashboard rounds them.

use std::path::Path;

use serde::Serialize;

use super::folder::OutputFolder;
use super::reader::{BinRecord, DictionaryRow, ExampleRecord, FeatureReader, FeatureRecord};
use crate::error::{InterpError, Result};

pub const DEFAULT_FEATURES_PER_BATCH: usize = 128;

/// Names Neuronpedia files a dictionary under; each defaults to what the database says.
#[derive(Clone, Debug)]
pub struct NeuronpediaOptions {
    /// The dictionary to export; may be left out when the database holds one.
    pub dictionary: Option<String>,
    /// Default: the scan's model, its file or repository name lower-cased, without
    /// `.gguf` or a quantisation suffix (`SmolLM2-135M-Instruct.Q4_1.gguf` →
    /// `smollm2-135m-instruct`).
    pub model_id: Option<String>,
    /// Default: the dictionary's name.
    pub sae_set: Option<String>,
    /// Default: the hook's block (`blocks.6.…` → 6; `hook_embed` → 0).
    pub layer: Option<u32>,
    pub features_per_batch: usize,
}

impl Default for NeuronpediaOptions {
    fn default() -> Self {
        NeuronpediaOptions {
            dictionary: None,
            model_id: None,
            sae_set: None,
            layer: None,
            features_per_batch: DEFAULT_FEATURES_PER_BATCH,
        }
    }
}

/// What an export wrote.
#[derive(Clone, Debug, PartialEq)]
pub struct NeuronpediaExport {
    pub dictionary: String,
    pub model_id: String,
    pub layer: u32,
    pub sae_set: String,
    pub batches: usize,
    pub features: usize,
    pub skipped: usize,
}

pub const SKIPPED_FILE: &str = "skipped_indexes.json";

/// The names this export writes: `batch-{n}.json` and `skipped_indexes.json`.
pub fn is_export_file(name: &str) -> bool {
    name == SKIPPED_FILE
        || name
            .strip_prefix("batch-")
            .and_then(|n| n.strip_suffix(".json"))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Writes one dictionary of the database at `db` into `dir` (created if missing, refused if
/// it holds other files; a previous export there is replaced).
pub fn export(db: &Path, dir: &Path, options: &NeuronpediaOptions) -> Result<NeuronpediaExport> {
    if options.features_per_batch == 0 {
        return Err(InterpError::invalid(
            "features_per_batch",
            "must be at least 1",
        ));
    }
    let reader = FeatureReader::open(db)?;
    let dict = choose_dictionary(&reader, options.dictionary.as_deref())?;
    let ids = Identity {
        model_id: match &options.model_id {
            Some(id) => id.clone(),
            None => model_id_of(&reader.info.model),
        },
        layer: match options.layer {
            Some(l) => l,
            None => layer_of(&dict.hook).ok_or_else(|| InterpError::Dictionary {
                dictionary: dict.name.clone(),
                message: format!(
                    "hook `{}` belongs to no block; give the Neuronpedia layer explicitly",
                    dict.hook
                ),
            })?,
        },
        sae_set: options.sae_set.clone().unwrap_or_else(|| dict.name.clone()),
    };
    let mut folder = OutputFolder::prepare(dir, is_export_file)?;
    let (alive, dead) = reader.split_dead(dict)?;
    let windows = reader.scan.windows();
    let mut batches = 0;
    for chunk in alive.chunks(options.features_per_batch) {
        let (Some(&first), Some(&last)) = (chunk.first(), chunk.last()) else {
            continue;
        };
        let records = reader.features(dict, first, last)?;
        let features = records
            .iter()
            .map(|f| feature_json(f, dict, &reader))
            .collect();
        let batch = BatchJson {
            model_id: &ids.model_id,
            layer: ids.layer,
            sae_set: &ids.sae_set,
            features,
            settings: SettingsJson {
                n_batches_to_sample_from: windows,
                n_prompt_to_select: windows,
            },
        };
        folder.write(&format!("batch-{batches}.json"), &to_json(&batch)?)?;
        batches += 1;
    }
    let skipped = SkippedJson {
        model_id: &ids.model_id,
        layer: ids.layer.to_string(),
        sae_set: &ids.sae_set,
        log_sparsity: SAEDASHBOARD_SPARSITY_THRESHOLD,
        skipped_indexes: &dead,
    };
    folder.write(SKIPPED_FILE, &to_json(&skipped)?)?;
    folder.finish()?;
    Ok(NeuronpediaExport {
        dictionary: dict.name.clone(),
        model_id: ids.model_id,
        layer: ids.layer,
        sae_set: ids.sae_set,
        batches,
        features: alive.len(),
        skipped: dead.len(),
    })
}

struct Identity {
    model_id: String,
    layer: u32,
    sae_set: String,
}

fn choose_dictionary<'a>(
    reader: &'a FeatureReader,
    name: Option<&str>,
) -> Result<&'a DictionaryRow> {
    let names = || {
        reader
            .dictionaries
            .iter()
            .map(|d| format!("`{}`", d.name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match (name, reader.dictionaries.as_slice()) {
        (None, [only]) => Ok(only),
        (None, []) => Err(InterpError::database(reader.path(), "holds no dictionary")),
        (None, _) => Err(InterpError::database(
            reader.path(),
            format!(
                "holds several dictionaries ({}): name the one to export",
                names()
            ),
        )),
        (Some(n), all) => all.iter().find(|d| d.name == n).ok_or_else(|| {
            InterpError::database(
                reader.path(),
                format!("has no dictionary `{n}` (it holds {})", names()),
            )
        }),
    }
}

/// A Neuronpedia-style model id from a `--model` spec (empty: the default model).
pub fn model_id_of(spec: &str) -> String {
    let spec = if spec.is_empty() {
        saelab_model::load::DEFAULT_MODEL_FILE
    } else {
        spec
    };
    let last = spec
        .trim_end_matches(['/', '\\'])
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or(spec);
    let stem = last.strip_suffix(".gguf").unwrap_or(last);
    // GGUF names end in a quantisation tag (`.Q4_1`, `.F16`): not part of the model.
    let stem = match stem.rsplit_once('.') {
        Some((head, tag)) if is_quantisation(tag) => head,
        _ => stem,
    };
    stem.to_lowercase()
}

fn is_quantisation(tag: &str) -> bool {
    let upper = tag.to_ascii_uppercase();
    let mut chars = upper.chars();
    matches!(chars.next(), Some('Q' | 'F' | 'I' | 'B'))
        && upper.chars().any(|c| c.is_ascii_digit())
        && upper.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The block a TransformerLens hook name belongs to.
pub fn layer_of(hook: &str) -> Option<u32> {
    if hook == "hook_embed" {
        return Some(0);
    }
    hook.strip_prefix("blocks.")?
        .split('.')
        .next()?
        .parse()
        .ok()
}

/// What SAEDashboard writes as `log_sparsity` by default. It records its sparsity threshold
/// there; this export skips only features that never fired, and keeps the key and its
/// usual value for readers that expect a number.
const SAEDASHBOARD_SPARSITY_THRESHOLD: i64 = 1;

#[derive(Serialize)]
struct BatchJson<'a> {
    model_id: &'a str,
    layer: u32,
    sae_set: &'a str,
    features: Vec<FeatureJson>,
    settings: SettingsJson,
}

/// Both are the windows scanned, as SAEDashboard's runner filled them.
#[derive(Serialize)]
struct SettingsJson {
    n_batches_to_sample_from: u64,
    n_prompt_to_select: u64,
}

#[derive(Serialize)]
struct SkippedJson<'a> {
    model_id: &'a str,
    /// A string here, a number in the batches, as SAEDashboard writes them.
    layer: String,
    sae_set: &'a str,
    log_sparsity: i64,
    skipped_indexes: &'a [u32],
}

/// A list this export never fills (see the module comment).
type NotComputed = [u32; 0];

#[derive(Serialize)]
struct FeatureJson {
    feature_index: u32,
    neuron_alignment_indices: NotComputed,
    neuron_alignment_values: NotComputed,
    neuron_alignment_l1: NotComputed,
    correlated_neurons_indices: NotComputed,
    correlated_neurons_l1: NotComputed,
    correlated_neurons_pearson: NotComputed,
    correlated_features_indices: NotComputed,
    correlated_features_l1: NotComputed,
    correlated_features_pearson: NotComputed,
    neg_str: Vec<String>,
    neg_values: Vec<f64>,
    pos_str: Vec<String>,
    pos_values: Vec<f64>,
    frac_nonzero: f64,
    freq_hist_data_bar_values: Vec<f64>,
    freq_hist_data_bar_heights: Vec<u32>,
    logits_hist_data_bar_heights: NotComputed,
    logits_hist_data_bar_values: NotComputed,
    n_prompts_total: u64,
    n_tokens_in_prompt: u64,
    dataset: String,
    decoder_weights_dist: NotComputed,
    activations: Vec<ActivationJson>,
}

#[derive(Serialize)]
struct ActivationJson {
    bin_min: f64,
    bin_max: f64,
    bin_contains: f64,
    tokens: Vec<String>,
    values: Vec<f64>,
    /// The example's own token in `tokens`.
    qualifying_token_index: usize,
}

fn feature_json(f: &FeatureRecord, dict: &DictionaryRow, reader: &FeatureReader) -> FeatureJson {
    let text = |id: u32| token_text(&reader.vocabulary, id);
    let (neg_str, neg_values) = f
        .lens_suppressed
        .iter()
        .map(|&(t, v)| (text(t), round3(v)))
        .unzip();
    let (pos_str, pos_values) = f
        .lens_promoted
        .iter()
        .map(|&(t, v)| (text(t), round3(v)))
        .unzip();
    let (freq_hist_data_bar_values, freq_hist_data_bar_heights) =
        histogram_bars(&f.hist, &dict.hist_edges);
    let max = round3(f.max_act);
    let mut activations: Vec<ActivationJson> = f
        .top
        .iter()
        .map(|e| activation_json(e, -1.0, max, -1.0, &reader.vocabulary))
        .collect();
    let positions = dict.positions.max(1) as f64;
    for BinRecord {
        lo,
        hi,
        count,
        examples,
    } in f.bins.iter().rev()
    {
        let contains = *count as f64 / positions;
        activations.extend(
            examples.iter().map(|e| {
                activation_json(e, round3(*lo), round3(*hi), contains, &reader.vocabulary)
            }),
        );
    }
    FeatureJson {
        feature_index: f.index,
        neuron_alignment_indices: [],
        neuron_alignment_values: [],
        neuron_alignment_l1: [],
        correlated_neurons_indices: [],
        correlated_neurons_l1: [],
        correlated_neurons_pearson: [],
        correlated_features_indices: [],
        correlated_features_l1: [],
        correlated_features_pearson: [],
        neg_str,
        neg_values,
        pos_str,
        pos_values,
        frac_nonzero: f.density,
        freq_hist_data_bar_values,
        freq_hist_data_bar_heights,
        logits_hist_data_bar_heights: [],
        logits_hist_data_bar_values: [],
        n_prompts_total: reader.scan.windows(),
        n_tokens_in_prompt: reader.scan.ctx,
        dataset: reader.scan.corpus.clone(),
        decoder_weights_dist: [],
        activations,
    }
}

fn activation_json(
    e: &ExampleRecord,
    bin_min: f64,
    bin_max: f64,
    bin_contains: f64,
    vocabulary: &[String],
) -> ActivationJson {
    ActivationJson {
        bin_min,
        bin_max,
        bin_contains,
        tokens: e.ids.iter().map(|&t| token_text(vocabulary, t)).collect(),
        values: e.acts.iter().map(|&v| round3(v as f64)).collect(),
        qualifying_token_index: e.at,
    }
}

/// The histogram between its first and last nonzero bins: (geometric centres, counts).
/// Centres keep 3 significant digits, since log-spaced bins reach far below 0.001.
fn histogram_bars(counts: &[u32], edges: &[f64]) -> (Vec<f64>, Vec<u32>) {
    let bins = counts.len().min(edges.len().saturating_sub(1));
    let Some(first) = counts[..bins].iter().position(|&c| c > 0) else {
        return (Vec::new(), Vec::new());
    };
    let last = counts[..bins].iter().rposition(|&c| c > 0).unwrap_or(first);
    let centres = (first..=last)
        .map(|b| significant3((edges[b] * edges[b + 1]).sqrt()))
        .collect();
    (centres, counts[first..=last].to_vec())
}

/// A token's display text; an id the vocabulary lacks reads as `<token N>`.
fn token_text(vocabulary: &[String], id: u32) -> String {
    vocabulary
        .get(id as usize)
        .cloned()
        .unwrap_or_else(|| format!("<token {id}>"))
}

pub fn round3(v: f64) -> f64 {
    // Adding 0 turns a rounded -0.0 into 0.0, which JSON writes without a sign.
    (v * 1000.0).round() / 1000.0 + 0.0
}

fn significant3(v: f64) -> f64 {
    format!("{v:.2e}").parse().unwrap_or(v)
}

fn to_json(value: &impl Serialize) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| InterpError::invalid("neuronpedia json", e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_ids_drop_folders_extensions_and_quantisation() {
        assert_eq!(model_id_of(""), "smollm2-135m-instruct");
        assert_eq!(model_id_of("/m/SmolLM2-135M.Q8_0.gguf"), "smollm2-135m");
        assert_eq!(
            model_id_of("EleutherAI/pythia-70m-deduped"),
            "pythia-70m-deduped"
        );
        assert_eq!(model_id_of("gpt2"), "gpt2");
        assert_eq!(model_id_of("/models/llama-3.2-1b/"), "llama-3.2-1b");
    }

    #[test]
    fn layers_come_from_the_hook_name() {
        assert_eq!(layer_of("blocks.6.hook_resid_post"), Some(6));
        assert_eq!(layer_of("blocks.12.mlp.hook_post"), Some(12));
        assert_eq!(layer_of("hook_embed"), Some(0));
        assert_eq!(layer_of("ln_final.hook_normalized"), None);
    }

    #[test]
    fn histogram_is_trimmed_to_its_nonzero_bins() {
        let edges = [0.001, 0.01, 0.1, 1.0, 10.0, 100.0];
        let (values, heights) = histogram_bars(&[0, 3, 0, 5, 0], &edges);
        assert_eq!(heights, [3, 0, 5]);
        assert_eq!(values, [0.0316, 0.316, 3.16]);
        assert_eq!(histogram_bars(&[0; 5], &edges), (vec![], vec![]));
    }

    #[test]
    fn export_file_names() {
        assert!(is_export_file("batch-0.json") && is_export_file("batch-17.json"));
        assert!(is_export_file(SKIPPED_FILE));
        assert!(!is_export_file("batch-.json") && !is_export_file("batch-1.json.bak"));
        assert_eq!(round3(18.40464210510254), 18.405);
        assert_eq!(round3(-0.0004).to_bits(), 0f64.to_bits());
    }
}
