//! Building a feature database end to end: the scan over a corpus or a cache, then the
//! logit lens, nearest features and any ablations asked for, written atomically.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use saelab_data::activations::{live_windows, ActivationWindow, LiveSpec, WindowStream};
use saelab_data::cache::{ActivationCache, ReadOptions};
use saelab_data::{Documents, WindowConfig};
use saelab_model::{HookPoint, LoadedModel};
use saelab_sae::contextual::window::AnyDictionary;

use crate::ablation::{ablate, AblationRequest, METHOD};
use crate::db::DatabaseWriter;
use crate::error::{InterpError, Result};
use crate::lens::{excluded_tokens, logit_lens, LensPath};
use crate::nearest::nearest;
use crate::scan::limit::{next_chunk, FirstTokens};
use crate::scan::{histogram, DictionaryScan, ScanDictionary, ScanOptions, Scanner};

/// Where the activations come from.
pub enum Source {
    /// The model run over a corpus's windows.
    Corpus {
        documents: Documents,
        window: WindowConfig,
        batch_windows: usize,
    },
    /// An activation cache (`saelab harvest`), which also holds the token ids.
    Cache(PathBuf),
}

#[derive(Clone, Debug)]
pub struct BuildOptions {
    pub scan: ScanOptions,
    /// Stop after this many window positions (start tokens included); None: all.
    pub tokens: Option<u64>,
    /// Tokens per side of each logit lens.
    pub lens_tokens: usize,
    /// Nearest features kept per feature and other dictionary.
    pub nearest: usize,
    /// Precompute ablations for this many top examples per feature.
    pub ablate_top: usize,
    /// Windows scanned together.
    pub chunk_windows: usize,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            scan: ScanOptions::default(),
            tokens: None,
            lens_tokens: 20,
            nearest: 5,
            ablate_top: 0,
            chunk_windows: 16,
        }
    }
}

/// Where a build is, for progress bars.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Token positions scanned so far (of the limit, if any).
    Scan {
        tokens: u64,
        limit: Option<u64>,
    },
    /// The pass over the tokens is over; the lens, examples and nearest features follow.
    Scanned,
    /// Features whose top examples have been ablated.
    Ablate {
        done: u64,
        total: u64,
    },
    Write,
}

/// What the database records about its origin.
pub struct Provenance {
    /// The `--model` spec that reloads the model (empty: the default model).
    pub model_spec: String,
    pub corpus: String,
}

pub struct BuildSummary {
    /// Window positions read (start tokens included).
    pub tokens: u64,
    pub dictionaries: Vec<(String, u64, f64)>,
}

pub fn build_database(
    path: &Path,
    model: Arc<LoadedModel>,
    source: Source,
    dictionaries: Vec<ScanDictionary>,
    provenance: &Provenance,
    options: &BuildOptions,
    progress: &mut dyn FnMut(Stage),
) -> Result<BuildSummary> {
    if options.chunk_windows == 0 || options.chunk_windows > 4096 {
        return Err(InterpError::invalid("chunk_windows", "must be 1 to 4096"));
    }
    if options.lens_tokens > 1000 || options.nearest > 1000 {
        return Err(InterpError::invalid(
            "lens_tokens",
            "the lens and nearest features keep at most 1000 entries per feature",
        ));
    }
    let hooks = unique_hooks(&dictionaries);
    let (stream, ctx) = open_stream(&model, source, &hooks)?;
    let layout = stream.layout().clone();
    for h in &layout.hooks {
        let expected = hooks
            .iter()
            .find(|p| p.to_string() == h.name)
            .map(|p| p.width(&model.model.cfg));
        if expected.is_some_and(|w| w != h.d) {
            return Err(InterpError::invalid(
                "model",
                format!(
                    "hook `{}` has width {} in the activations but {} in the model",
                    h.name,
                    h.d,
                    expected.unwrap_or_default()
                ),
            ));
        }
    }
    let mut scanner = Scanner::new(&layout, dictionaries, options.scan.clone())?;
    let mut windows: Box<dyn Iterator<Item = Result<ActivationWindow>>> = match options.tokens {
        Some(n) => Box::new(FirstTokens::new(stream, n)),
        None => Box::new(stream.map(|w| w.map_err(InterpError::Data))),
    };
    let mut tokens = 0u64;
    let mut chunk = Vec::with_capacity(options.chunk_windows);
    while next_chunk(&mut windows, options.chunk_windows, &mut chunk)? {
        tokens += chunk
            .iter()
            .map(|w| w.mask.iter().filter(|m| **m == 1).count() as u64)
            .sum::<u64>();
        scanner.add(&chunk)?;
        progress(Stage::Scan {
            tokens,
            limit: options.tokens,
        });
    }
    if tokens == 0 {
        return Err(InterpError::invalid("corpus", "no tokens to scan"));
    }
    let scans = scanner.finish();
    progress(Stage::Scanned);

    let mut db = DatabaseWriter::create(path)?;
    let cfg = &model.model.cfg;
    db.meta(&meta_rows(provenance, options, cfg, tokens, ctx))?;
    db.tokens(&vocabulary(&model)?)?;
    let excluded = excluded_tokens(&model.model, &model.tokenizer)?;
    db.excluded(&excluded)?;
    let mut ids = Vec::with_capacity(scans.len());
    let total_ablations = if options.ablate_top > 0 {
        scans
            .iter()
            .filter(|s| !s.sae.is_contextual())
            .map(|s| s.d_sae as u64)
            .sum()
    } else {
        0
    };
    let mut ablated = 0u64;
    for scan in &scans {
        let directions = decoder_directions(scan);
        let lens = logit_lens(
            &model.model,
            scan.hook,
            &directions,
            scan.d_in,
            options.lens_tokens,
            &excluded,
        )?;
        let lens_text = LensPath::of(scan.hook).describe(scan.hook, cfg.n_layers);
        let rows = db.add_dictionary(scan, &lens_text, lens.as_deref(), &histogram::edges())?;
        // Ablation deletes a token and re-encodes one position: a per-position dictionary's
        // question. A contextual one's examples have none.
        if let (true, Some(sae)) = (options.ablate_top > 0, scan.sae.per_position()) {
            for (f, examples) in rows.top_examples.iter().enumerate() {
                for (e, &example_id) in scan.features[f]
                    .top
                    .iter()
                    .zip(examples)
                    .take(options.ablate_top)
                {
                    let pos = e.pos as usize;
                    let request = AblationRequest {
                        hook: scan.hook,
                        ids: &e.ids[..=pos],
                        pos,
                        feature: f,
                        range: e.start as usize..pos,
                    };
                    let a = ablate(&model.model, sae, &request, |id| {
                        model.tokenizer.is_special(id)
                    })?;
                    db.ablation(example_id, &a)?;
                }
                ablated += 1;
                progress(Stage::Ablate {
                    done: ablated,
                    total: total_ablations,
                });
            }
        }
        ids.push(rows.id);
    }
    progress(Stage::Write);
    // Cosines need only directions: a contextual dictionary's, in the input's units.
    let decoders: Vec<Cow<[f32]>> = scans
        .iter()
        .map(|s| match &s.sae {
            AnyDictionary::PerPosition(sae) => Cow::Borrowed(sae.weights.w_dec.as_slice()),
            AnyDictionary::Contextual(c) => Cow::Owned(c.geometry().w_dec),
        })
        .collect();
    for (a, sa) in scans.iter().enumerate() {
        for (b, sb) in scans.iter().enumerate() {
            if a != b && sa.d_in == sb.d_in {
                let best = nearest(&decoders[a], &decoders[b], sa.d_in, options.nearest);
                db.nearest(ids[a], ids[b], &best)?;
            }
        }
    }
    db.finish()?;
    Ok(BuildSummary {
        tokens,
        dictionaries: scans
            .iter()
            .map(|s| (s.name.clone(), s.positions, s.l0))
            .collect(),
    })
}

pub fn unique_hooks(dictionaries: &[ScanDictionary]) -> Vec<HookPoint> {
    let mut hooks: Vec<HookPoint> = Vec::new();
    for d in dictionaries {
        if !hooks.contains(&d.hook) {
            hooks.push(d.hook);
        }
    }
    hooks
}

pub fn open_stream(
    model: &Arc<LoadedModel>,
    source: Source,
    hooks: &[HookPoint],
) -> Result<(WindowStream, usize)> {
    Ok(match source {
        Source::Corpus {
            documents,
            window,
            batch_windows,
        } => {
            let ctx = window.len;
            let spec = LiveSpec {
                points: hooks.to_vec(),
                window,
                batch_windows,
                max_windows: None,
                skip_windows: 0,
            };
            (live_windows(model.clone(), documents, spec)?, ctx)
        }
        Source::Cache(dir) => {
            let cache = ActivationCache::open(&dir)?;
            let ctx = cache.layout().ctx;
            (cache.windows(ReadOptions::default()), ctx)
        }
    })
}

/// Decoder rows in the hook's units (a dictionary saved with its input scale folded in
/// has `input_scale` 1; one in memory divides by it).
fn decoder_directions(scan: &DictionaryScan) -> Vec<f32> {
    match &scan.sae {
        AnyDictionary::PerPosition(sae) => {
            let s = sae.input_scale;
            sae.weights.w_dec.iter().map(|v| v / s).collect()
        }
        // A temporal SAE's decoder is in its rescaled units; `geometry` undoes the scale.
        AnyDictionary::Contextual(c) => c.geometry().w_dec,
    }
}

fn vocabulary(model: &LoadedModel) -> Result<Vec<(String, bool)>> {
    (0..model.model.cfg.vocab_size as u32)
        .map(|id| {
            let text = model
                .tokenizer
                .decode(&[id])
                .ok()
                .filter(|t| !t.is_empty())
                .or_else(|| model.tokenizer.id_to_token(id))
                .unwrap_or_default();
            Ok((text, model.tokenizer.is_special(id)))
        })
        .collect()
}

fn meta_rows(
    p: &Provenance,
    o: &BuildOptions,
    cfg: &saelab_model::ModelConfig,
    tokens: u64,
    ctx: usize,
) -> Vec<(&'static str, String)> {
    let config = serde_json::json!({
        "d_model": cfg.d_model,
        "n_layers": cfg.n_layers,
        "vocab_size": cfg.vocab_size,
    });
    vec![
        ("saelab_version", env!("CARGO_PKG_VERSION").to_string()),
        ("model", p.model_spec.clone()),
        ("model_config", config.to_string()),
        ("corpus", p.corpus.clone()),
        ("tokens", tokens.to_string()),
        ("ctx", ctx.to_string()),
        ("seed", o.scan.seed.to_string()),
        ("top_k", o.scan.top_k.to_string()),
        ("quantile_bins", o.scan.quantile_bins.to_string()),
        ("per_bin", o.scan.per_bin.to_string()),
        ("context_before", o.scan.context.before.to_string()),
        ("context_after", o.scan.context.after.to_string()),
        ("include_special", o.scan.include_special.to_string()),
        ("ablation_method", METHOD.to_string()),
    ]
}
